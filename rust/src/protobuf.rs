//! Protocol Buffers wire format, write side only: what OTLP export bodies need (varints, fixed
//! 32/64-bit fields, length-delimited fields and nested messages).
//! <https://protobuf.dev/programming-guides/encoding/>

/// Wire types.
pub const VARINT: u32 = 0;
pub const I64: u32 = 1;
pub const LEN: u32 = 2;
pub const I32: u32 = 5;

/// `value` as a base-128 varint, least significant group first.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A field's key: its number and wire type.
pub fn put_tag(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    put_varint(out, u64::from((field << 3) | wire_type));
}

/// A varint field (int64 as its two's complement, enums, bools); zero is written too: the caller
/// leaves out a proto3 default it does not want on the wire.
pub fn put_varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    put_tag(out, field, VARINT);
    put_varint(out, value);
}

pub fn put_fixed64_field(out: &mut Vec<u8>, field: u32, value: u64) {
    put_tag(out, field, I64);
    out.extend_from_slice(&value.to_le_bytes());
}

pub fn put_fixed32_field(out: &mut Vec<u8>, field: u32, value: u32) {
    put_tag(out, field, I32);
    out.extend_from_slice(&value.to_le_bytes());
}

/// A bytes or string field.
pub fn put_bytes_field(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    put_tag(out, field, LEN);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// A nested message field whose body `write` appends to `out`. Its length is known only after, so
/// one byte is kept for it (most messages here are under 128 bytes) and the body is moved along
/// when the length needs more. On error, `out` is left as it was.
pub fn put_message<E>(
    out: &mut Vec<u8>,
    field: u32,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    let start = out.len();
    put_tag(out, field, LEN);
    let at = out.len();
    out.push(0);
    if let Err(error) = write(out) {
        out.truncate(start);
        return Err(error);
    }
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        put_varint(&mut prefix, len as u64);
        out.splice(at..at + 1, prefix);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_take_seven_bits_a_byte_low_group_first() {
        let mut out = Vec::new();
        for value in [0u64, 1, 127, 128, 300, u64::MAX] {
            put_varint(&mut out, value);
        }
        assert_eq!(
            out,
            [
                vec![0x00, 0x01, 0x7f, 0x80, 0x01, 0xac, 0x02],
                vec![0xff; 9],
                vec![0x01]
            ]
            .concat()
        );
    }

    #[test]
    fn fields_carry_their_number_and_wire_type() {
        let mut out = Vec::new();
        put_varint_field(&mut out, 1, 150);
        put_bytes_field(&mut out, 2, b"testing");
        put_fixed64_field(&mut out, 7, 1);
        put_fixed32_field(&mut out, 16, 0x101);
        assert_eq!(
            out,
            [
                &[0x08, 0x96, 0x01][..],
                &[0x12, 0x07],
                b"testing",
                &[0x39, 1, 0, 0, 0, 0, 0, 0, 0],
                &[0x85, 0x01, 0x01, 0x01, 0, 0],
            ]
            .concat()
        );
    }

    #[test]
    fn a_nested_message_gets_its_length_short_or_long() {
        let mut out = Vec::new();
        put_message::<()>(&mut out, 3, |o| {
            put_varint_field(o, 1, 150);
            Ok(())
        })
        .unwrap();
        assert_eq!(out, [0x1a, 0x03, 0x08, 0x96, 0x01]);

        let mut out = vec![0xee];
        put_message::<()>(&mut out, 1, |o| {
            put_bytes_field(o, 1, &[b'x'; 200]);
            Ok(())
        })
        .unwrap();
        // 203 bytes of body: a two-byte length, the body moved along intact.
        assert_eq!(&out[..6], &[0xee, 0x0a, 0xcb, 0x01, 0x0a, 0xc8]);
        assert_eq!(out.len(), 1 + 1 + 2 + 203);
        assert!(out[7..].iter().all(|&b| b == b'x'));
    }

    #[test]
    fn a_failed_nested_message_leaves_nothing() {
        let mut out = vec![1, 2];
        let failed = put_message(&mut out, 5, |o| {
            put_bytes_field(o, 1, b"half");
            Err("no")
        });
        assert_eq!(failed, Err("no"));
        assert_eq!(out, [1, 2]);
    }
}
