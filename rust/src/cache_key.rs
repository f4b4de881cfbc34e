//! Exact-cache keys: a keyed 128-bit hash over a canonical form of a hub-format request body.
//!
//! The canonical form is the body re-written with every object's members sorted by key, no
//! whitespace, strings decoded and re-escaped one way (`\u0041` and `A` are the same text), numbers
//! written one way (`0`, `0.0` and `0e0` are one number; integer literals are kept digit for digit
//! so seeds beyond 2^53 stay distinct), and the top-level members that do not change the answer
//! (`user`, `metadata`, `store`, ...) left out. The hash is two SipHash-2-4 runs with the four
//! 64-bit keys of a 32-byte secret over the namespace, the caller's extra text and the canonical
//! bytes, each length-prefixed: the namespace is a hard part of the key, never a text prefix.
//! Bodies over `DETACH_OVER` bytes are canonicalised and hashed with the GIL released.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::hash::Hasher;
#[allow(deprecated)]
use std::hash::SipHasher;

/// Bodies longer than this are keyed with the GIL released (about 10 µs of work).
const DETACH_OVER: usize = 16 * 1024;
/// Nesting deeper than this is not keyed (the request is simply not cached).
const MAX_DEPTH: usize = 128;
/// Top-level members that identify the caller or ask for bookkeeping, not a different answer.
const IGNORED: &[&[u8]] = &[
    b"user",
    b"metadata",
    b"store",
    b"safety_identifier",
    b"prompt_cache_key",
];

/// Why a body has no canonical form.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid;

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

/// What the key needs from the top level besides the canonical bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TopLevel {
    /// `temperature` is a number equal to 0, or `seed` is present and not null.
    pub deterministic: bool,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), Invalid> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    fn literal(&mut self, word: &[u8], out: &mut Vec<u8>) -> Result<(), Invalid> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            out.extend_from_slice(word);
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Result<(), Invalid> {
        if depth > MAX_DEPTH {
            return Err(Invalid);
        }
        self.ws();
        match self.peek().ok_or(Invalid)? {
            b'{' => self.object(out, depth, None),
            b'[' => self.array(out, depth),
            b'"' => {
                let s = self.string()?;
                emit_string(out, &s);
                Ok(())
            }
            b't' => self.literal(b"true", out),
            b'f' => self.literal(b"false", out),
            b'n' => self.literal(b"null", out),
            _ => self.number(out),
        }
    }

    fn array(&mut self, out: &mut Vec<u8>, depth: usize) -> Result<(), Invalid> {
        self.i += 1;
        out.push(b'[');
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            out.push(b']');
            return Ok(());
        }
        loop {
            self.value(out, depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    out.push(b',');
                }
                Some(b']') => {
                    self.i += 1;
                    out.push(b']');
                    return Ok(());
                }
                _ => return Err(Invalid),
            }
        }
    }

    /// An object with its members sorted by (decoded) key; at the top level (`top` given) the
    /// ignored members are left out and the determinism flags read.
    fn object(
        &mut self,
        out: &mut Vec<u8>,
        depth: usize,
        mut top: Option<&mut TopLevel>,
    ) -> Result<(), Invalid> {
        self.i += 1;
        let mut members: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            out.extend_from_slice(b"{}");
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(Invalid);
            }
            let key = self.string()?;
            self.expect(b':')?;
            let mut value = Vec::new();
            self.value(&mut value, depth + 1)?;
            if let Some(top) = top.as_deref_mut() {
                if key == b"temperature" && number_is_zero(&value)
                    || key == b"seed" && value != b"null"
                {
                    top.deterministic = true;
                }
            }
            if top.is_none() || !IGNORED.contains(&key.as_slice()) {
                members.push((key, value));
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(Invalid),
            }
        }
        members.sort_by(|a, b| a.0.cmp(&b.0));
        out.push(b'{');
        for (n, (key, value)) in members.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            emit_string(out, key);
            out.push(b':');
            out.extend_from_slice(value);
        }
        out.push(b'}');
        Ok(())
    }

    /// A string's decoded UTF-8 bytes (escapes resolved, surrogate pairs joined).
    fn string(&mut self) -> Result<Vec<u8>, Invalid> {
        self.i += 1;
        let mut s = Vec::new();
        loop {
            let c = *self.b.get(self.i).ok_or(Invalid)?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.b.get(self.i).ok_or(Invalid)?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(Invalid),
                    };
                    let mut buf = [0u8; 4];
                    s.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c if c < 0x20 => return Err(Invalid),
                c => s.push(c),
            }
        }
        if std::str::from_utf8(&s).is_err() {
            return Err(Invalid);
        }
        Ok(s)
    }

    fn hex4(&mut self) -> Result<u32, Invalid> {
        let digits = self.b.get(self.i..self.i + 4).ok_or(Invalid)?;
        let text = std::str::from_utf8(digits).map_err(|_| Invalid)?;
        self.i += 4;
        u32::from_str_radix(text, 16).map_err(|_| Invalid)
    }

    fn unicode_escape(&mut self) -> Result<char, Invalid> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) {
            if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                return Err(Invalid);
            }
            self.i += 2;
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return Err(Invalid);
            }
            let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
            return char::from_u32(code).ok_or(Invalid);
        }
        char::from_u32(first).ok_or(Invalid)
    }

    fn number(&mut self, out: &mut Vec<u8>) -> Result<(), Invalid> {
        let start = self.i;
        while self.i < self.b.len()
            && matches!(
                self.b[self.i],
                b'-' | b'+' | b'0'..=b'9' | b'.' | b'e' | b'E'
            )
        {
            self.i += 1;
        }
        let raw = std::str::from_utf8(&self.b[start..self.i]).map_err(|_| Invalid)?;
        if raw.is_empty() || raw.starts_with('+') {
            return Err(Invalid);
        }
        let integer = raw.bytes().all(|c| c == b'-' || c.is_ascii_digit());
        if integer {
            // Digit for digit (a seed past 2^53 must not meet its neighbour); -0 is 0.
            let digits = raw.strip_prefix('-').unwrap_or(raw);
            if digits.is_empty() || digits.len() > 1 && digits.starts_with('0') {
                return Err(Invalid);
            }
            if digits.bytes().all(|c| c == b'0') {
                out.push(b'0');
            } else {
                out.extend_from_slice(raw.as_bytes());
            }
            return Ok(());
        }
        let value: f64 = raw.parse().map_err(|_| Invalid)?;
        if !value.is_finite() {
            return Err(Invalid);
        }
        let value = if value == 0.0 { 0.0 } else { value };
        // Display of f64 is the shortest text that reads back the same: 1.0 → "1", like the literal 1.
        out.extend_from_slice(value.to_string().as_bytes());
        Ok(())
    }
}

fn number_is_zero(canonical: &[u8]) -> bool {
    canonical == b"0"
}

fn emit_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            c if c < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 15)]);
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// The canonical form of a JSON object body and its top-level flags.
pub fn canonical(body: &[u8]) -> Result<(Vec<u8>, TopLevel), Invalid> {
    let mut parser = Parser { b: body, i: 0 };
    parser.ws();
    if parser.peek() != Some(b'{') {
        return Err(Invalid);
    }
    let mut out = Vec::with_capacity(body.len());
    let mut top = TopLevel::default();
    parser.object(&mut out, 0, Some(&mut top))?;
    parser.ws();
    if parser.i != body.len() {
        return Err(Invalid);
    }
    Ok((out, top))
}

fn keys(secret: &[u8; 32]) -> [u64; 4] {
    let mut k = [0u64; 4];
    for (n, chunk) in secret.chunks_exact(8).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        k[n] = u64::from_le_bytes(word);
    }
    k
}

/// The 16-byte key of `canonical` under `secret` in `namespace`, with the caller's `extra` text.
#[allow(deprecated)]
pub fn digest(secret: &[u8; 32], namespace: &[u8], extra: &[u8], canonical: &[u8]) -> [u8; 16] {
    let k = keys(secret);
    let mut out = [0u8; 16];
    for (n, (k0, k1)) in [(k[0], k[1]), (k[2], k[3])].into_iter().enumerate() {
        let mut h = SipHasher::new_with_keys(k0, k1);
        for part in [namespace, extra, canonical] {
            h.write_u64(part.len() as u64);
            h.write(part);
        }
        out[n * 8..n * 8 + 8].copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

fn key_of(
    secret: &[u8; 32],
    namespace: &[u8],
    extra: &[u8],
    body: &[u8],
) -> Option<([u8; 16], bool)> {
    let (form, top) = canonical(body).ok()?;
    Some((digest(secret, namespace, extra, &form), top.deterministic))
}

/// The exact-cache key of a hub-format body: `(16-byte key, deterministic)`, or None when the
/// body is not a JSON object (such a request is not cached).
#[pyfunction]
pub fn cache_key<'py>(
    py: Python<'py>,
    secret: &[u8],
    namespace: &str,
    extra: &str,
    body: &[u8],
) -> PyResult<Option<(Bound<'py, PyBytes>, bool)>> {
    let secret: &[u8; 32] = secret
        .try_into()
        .map_err(|_| PyValueError::new_err("the cache secret must be 32 bytes"))?;
    let (namespace, extra) = (namespace.as_bytes(), extra.as_bytes());
    let keyed = if body.len() > DETACH_OVER {
        py.detach(|| key_of(secret, namespace, extra, body))
    } else {
        key_of(secret, namespace, extra, body)
    };
    Ok(keyed.map(|(key, deterministic)| (PyBytes::new(py, &key), deterministic)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> String {
        String::from_utf8(canonical(body.as_bytes()).unwrap().0).unwrap()
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let a = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}"#;
        let b = "{ \"temperature\" : 0.0 ,\n \"messages\":[ {\"content\":\"h\\u0069\", \"role\":\"user\"} ], \"model\":\"m\"}";
        assert_eq!(form(a), form(b));
        assert_eq!(
            form(a),
            r#"{"messages":[{"content":"hi","role":"user"}],"model":"m","temperature":0}"#
        );
    }

    #[test]
    fn answer_changing_fields_differ_and_ignored_ones_do_not() {
        let base = form(r#"{"model":"m","messages":[],"seed":1}"#);
        assert_ne!(base, form(r#"{"model":"m","messages":[],"seed":2}"#));
        assert_ne!(base, form(r#"{"model":"n","messages":[],"seed":1}"#));
        assert_eq!(
            base,
            form(r#"{"model":"m","messages":[],"seed":1,"user":"u-1","metadata":{"a":1}}"#)
        );
        // Only at the top level: a nested `user` is content.
        assert_ne!(form(r#"{"a":{"user":1}}"#), form(r#"{"a":{}}"#));
    }

    #[test]
    fn big_integers_stay_distinct() {
        assert_ne!(
            form(r#"{"seed":9007199254740993}"#),
            form(r#"{"seed":9007199254740992}"#)
        );
        assert_eq!(form(r#"{"t":1.0}"#), form(r#"{"t":1}"#));
        assert_eq!(form(r#"{"t":-0}"#), form(r#"{"t":0e5}"#));
    }

    #[test]
    fn determinism_flags() {
        assert!(
            canonical(br#"{"temperature":0.0}"#)
                .unwrap()
                .1
                .deterministic
        );
        assert!(
            canonical(br#"{"seed":7,"temperature":1}"#)
                .unwrap()
                .1
                .deterministic
        );
        assert!(
            !canonical(br#"{"temperature":0.2}"#)
                .unwrap()
                .1
                .deterministic
        );
        assert!(!canonical(br#"{"seed":null}"#).unwrap().1.deterministic);
        assert!(
            !canonical(br#"{"messages":[{"temperature":0}]}"#)
                .unwrap()
                .1
                .deterministic
        );
    }

    #[test]
    fn invalid_bodies_have_no_form() {
        for bad in [
            "",
            "[]",
            "{",
            r#"{"a":}"#,
            r#"{"a":1}x"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":01}"#,
            r#"{"a":+1}"#,
        ] {
            assert_eq!(canonical(bad.as_bytes()), Err(Invalid), "{bad}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(canonical(format!("{{\"a\":{deep}}}").as_bytes()).is_err());
    }

    #[test]
    fn namespace_is_part_of_the_key() {
        let secret = [7u8; 32];
        let a = digest(&secret, b"team:a", b"chat", b"{}");
        assert_ne!(a, digest(&secret, b"team:b", b"chat", b"{}"));
        // Length prefixes: moving bytes between the parts changes the key.
        assert_ne!(
            digest(&secret, b"ab", b"c", b"{}"),
            digest(&secret, b"a", b"bc", b"{}")
        );
        assert_ne!(a, digest(&[8u8; 32], b"team:a", b"chat", b"{}"));
    }
}
