use super::*;

fn event(kind: &str, payload: &[u8]) -> Vec<u8> {
    encode_message(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

fn decode_all(bytes: &[u8]) -> Vec<Message> {
    let mut d = EventStreamDecoder::new();
    let out = d.feed(bytes).unwrap();
    d.finish().unwrap();
    out
}

#[test]
fn crc32_check_value() {
    // The standard check value of CRC-32/ISO-HDLC.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn empty_message_from_the_aws_test_suite() {
    // aws-c-event-stream's "empty message": no headers, no payload.
    let bytes = [
        0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8,
        0xff,
    ];
    let out = decode_all(&bytes);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message_type, "");
    assert!(out[0].payload.is_empty());
    assert_eq!(encode_message(&[], b""), bytes);
}

#[test]
fn events_in_one_buffer() {
    let mut bytes = event("messageStart", br#"{"role":"assistant"}"#);
    bytes.extend(event(
        "contentBlockDelta",
        br#"{"delta":{"text":"hi"},"contentBlockIndex":0}"#,
    ));
    let out = decode_all(&bytes);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].message_type, "event");
    assert_eq!(out[0].kind, "messageStart");
    assert_eq!(out[0].payload, br#"{"role":"assistant"}"#);
    assert_eq!(out[1].kind, "contentBlockDelta");
}

#[test]
fn exception_and_error_messages() {
    let exc = encode_message(
        &[
            (":exception-type", "throttlingException"),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        br#"{"message":"slow down"}"#,
    );
    let err = encode_message(
        &[
            (":message-type", "error"),
            (":error-code", "InternalFailure"),
            (":error-message", "boom"),
        ],
        b"",
    );
    let mut bytes = exc;
    bytes.extend(err);
    let out = decode_all(&bytes);
    assert_eq!(out[0].message_type, "exception");
    assert_eq!(out[0].kind, "throttlingException");
    assert_eq!(out[0].payload, br#"{"message":"slow down"}"#);
    assert_eq!(out[1].message_type, "error");
    assert_eq!(out[1].kind, "InternalFailure");
    assert_eq!(out[1].payload, b"boom");
}

#[test]
fn every_header_value_type_is_skipped() {
    // bool true, bool false, byte, short, int, long, bytes, timestamp, uuid, then the string we want.
    let mut h = Vec::new();
    let mut add = |name: &str, ty: u8, value: &[u8]| {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(ty);
        h.extend_from_slice(value);
    };
    add("t", 0, b"");
    add("f", 1, b"");
    add("b", 2, &[7]);
    add("s", 3, &[0, 7]);
    add("i", 4, &[0, 0, 0, 7]);
    add("l", 5, &[0; 8]);
    add("a", 6, &[0, 3, 1, 2, 3]);
    add("ts", 8, &[0; 8]);
    add("u", 9, &[0; 16]);
    add(":event-type", 7, &[0, 4, b'p', b'i', b'n', b'g']);
    let total = 12 + h.len() + 2 + 4;
    let mut m = Vec::new();
    m.extend_from_slice(&(total as u32).to_be_bytes());
    m.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let c = crc32(&m);
    m.extend_from_slice(&c.to_be_bytes());
    m.extend_from_slice(&h);
    m.extend_from_slice(b"{}");
    let c = crc32(&m);
    m.extend_from_slice(&c.to_be_bytes());
    let out = decode_all(&m);
    assert_eq!(out[0].kind, "ping");
    assert_eq!(out[0].payload, b"{}");
}

#[test]
fn split_at_every_byte_boundary() {
    let mut bytes = event("contentBlockDelta", br#"{"delta":{"text":"a"}}"#);
    bytes.extend(event("contentBlockDelta", br#"{"delta":{"text":"b"}}"#));
    bytes.extend(event("messageStop", br#"{"stopReason":"end_turn"}"#));
    let whole = decode_all(&bytes);
    for i in 0..=bytes.len() {
        for j in i..=bytes.len() {
            let mut d = EventStreamDecoder::new();
            let mut out = d.feed(&bytes[..i]).unwrap();
            out.extend(d.feed(&bytes[i..j]).unwrap());
            out.extend(d.feed(&bytes[j..]).unwrap());
            d.finish().unwrap();
            assert_eq!(out, whole, "split at {i}, {j}");
        }
    }
}

#[test]
fn byte_by_byte_emits_each_message_on_its_last_byte() {
    let first = event("messageStart", br#"{"role":"assistant"}"#);
    let mut bytes = first.clone();
    bytes.extend(event("messageStop", b"{}"));
    let mut d = EventStreamDecoder::new();
    for (i, b) in bytes.iter().enumerate() {
        let out = d.feed(&[*b]).unwrap();
        let expect = i + 1 == first.len() || i + 1 == bytes.len();
        assert_eq!(out.len(), usize::from(expect), "byte {i}");
    }
    assert_eq!(d.held_bytes(), 0);
}

#[test]
fn bad_message_crc() {
    let mut bytes = event("contentBlockDelta", br#"{"delta":{"text":"a"}}"#);
    let n = bytes.len();
    bytes[n - 6] ^= 0x01; // a payload byte
    let mut d = EventStreamDecoder::new();
    assert_eq!(d.feed(&bytes), Err(EventStreamError::MessageCrc));
    // The decoder stays failed.
    assert_eq!(d.feed(&event("x", b"")), Err(EventStreamError::MessageCrc));
    assert_eq!(d.finish(), Err(EventStreamError::MessageCrc));
}

#[test]
fn bad_prelude_crc_fails_before_the_body_arrives() {
    let mut bytes = event("contentBlockDelta", b"{}");
    bytes[3] ^= 0x40; // the total length
    let mut d = EventStreamDecoder::new();
    assert_eq!(d.feed(&bytes[..12]), Err(EventStreamError::PreludeCrc));
}

#[test]
fn lengths_out_of_range() {
    let prelude = |total: u32, headers: u32| {
        let mut m = Vec::new();
        m.extend_from_slice(&total.to_be_bytes());
        m.extend_from_slice(&headers.to_be_bytes());
        let c = crc32(&m);
        m.extend_from_slice(&c.to_be_bytes());
        m
    };
    let cases = [
        (prelude(15, 0), EventStreamError::InvalidLength),
        (prelude(20, 5), EventStreamError::InvalidLength),
        (
            prelude(17 * 1024 * 1024, 0),
            EventStreamError::MessageTooLarge,
        ),
    ];
    for (bytes, err) in cases {
        assert_eq!(EventStreamDecoder::new().feed(&bytes), Err(err));
    }
}

#[test]
fn invalid_headers() {
    // A string header whose length runs past the headers section, with valid CRCs.
    let h = [3u8, b'a', b'b', b'c', 7, 0, 9, b'x'];
    let total = 12 + h.len() + 4;
    let mut m = Vec::new();
    m.extend_from_slice(&(total as u32).to_be_bytes());
    m.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let c = crc32(&m);
    m.extend_from_slice(&c.to_be_bytes());
    m.extend_from_slice(&h);
    let c = crc32(&m);
    m.extend_from_slice(&c.to_be_bytes());
    assert_eq!(
        EventStreamDecoder::new().feed(&m),
        Err(EventStreamError::InvalidHeader)
    );
}

#[test]
fn truncated_message() {
    let bytes = event("contentBlockDelta", br#"{"delta":{"text":"a"}}"#);
    for cut in [1, 11, 12, bytes.len() - 1] {
        let mut d = EventStreamDecoder::new();
        assert!(d.feed(&bytes[..cut]).unwrap().is_empty());
        assert_eq!(d.held_bytes(), cut);
        assert_eq!(d.finish(), Err(EventStreamError::Truncated));
    }
}
