//! A validating, allocation-free JSON cursor over raw bytes.
//!
//! It walks a document once and never builds a tree: callers step through the members they care
//! about and `skip_value` everything else. Strings are returned as byte ranges of their literal
//! (quotes included) so edits can splice the original bytes. The grammar is RFC 8259, except that
//! bytes inside strings are not checked to be UTF-8 (they are passed through untouched).

use std::ops::Range;

/// The document is not valid JSON (or nests deeper than [`MAX_DEPTH`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

/// Nesting limit for `skip_value`, as in serde_json.
pub const MAX_DEPTH: u32 = 128;

/// A string literal found by [`Cursor::string`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrSpan {
    /// The literal, both quotes included.
    pub literal: Range<usize>,
    /// Whether the literal contains a backslash escape.
    pub escaped: bool,
}

impl StrSpan {
    /// The bytes between the quotes.
    pub fn inner(&self) -> Range<usize> {
        self.literal.start + 1..self.literal.end - 1
    }
}

/// Bytes that end the fast scan of a string body: `"`, `\` and control characters.
static STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = true;
        i += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Index of the first `"`, `\\` or control byte at or after `i` (or `buf.len()`). Eight bytes
/// at a time (SWAR), byte by byte for the last few.
#[inline]
fn skip_plain(buf: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(word) = buf.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let special = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w);
        let found = special & HIGH;
        if found != 0 {
            // The lowest flagged byte is exact (borrows only create false flags above it).
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < buf.len() && !STRING_STOP[buf[i] as usize] {
        i += 1;
    }
    i
}

/// A position in a JSON document.
pub struct Cursor<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// Skips JSON whitespace.
    #[inline]
    pub fn ws(&mut self) {
        while let Some(&b) = self.buf.get(self.pos) {
            if b == b' ' || b == b'\n' || b == b'\r' || b == b'\t' {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    #[inline]
    fn expect(&mut self, byte: u8) -> Result<(), Invalid> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    /// True when only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.ws();
        self.pos == self.buf.len()
    }

    /// Parses the string literal at the cursor.
    #[inline(always)]
    pub fn string(&mut self) -> Result<StrSpan, Invalid> {
        let start = self.pos;
        self.expect(b'"')?;
        let mut escaped = false;
        let buf = self.buf;
        let mut i = self.pos;
        loop {
            i = skip_plain(buf, i);
            match buf.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(StrSpan {
                        literal: start..i + 1,
                        escaped,
                    });
                }
                Some(b'\\') => {
                    escaped = true;
                    match buf.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                        Some(b'u') => {
                            let hex = buf.get(i + 2..i + 6).ok_or(Invalid)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(Invalid);
                            }
                            i += 6;
                        }
                        _ => return Err(Invalid),
                    }
                }
                _ => return Err(Invalid), // control character or end of input
            }
        }
    }

    /// Parses the number at the cursor and returns its range.
    pub fn number(&mut self) -> Result<Range<usize>, Invalid> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Invalid),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.require_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.require_digits()?;
        }
        Ok(start..self.pos)
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn require_digits(&mut self) -> Result<(), Invalid> {
        let start = self.pos;
        self.digits();
        if self.pos == start {
            Err(Invalid)
        } else {
            Ok(())
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Invalid> {
        if self.buf[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    /// Validates and steps over the value at the cursor (no leading whitespace).
    pub fn skip_value(&mut self) -> Result<(), Invalid> {
        self.skip_at_depth(0)
    }

    fn skip_at_depth(&mut self, depth: u32) -> Result<(), Invalid> {
        match self.peek().ok_or(Invalid)? {
            b'"' => self.string().map(drop),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return Err(Invalid);
                }
                if self.object_begin()? {
                    loop {
                        self.object_key()?;
                        self.skip_at_depth(depth + 1)?;
                        if !self.object_next()? {
                            break;
                        }
                    }
                }
                Ok(())
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return Err(Invalid);
                }
                if self.array_begin()? {
                    loop {
                        self.skip_at_depth(depth + 1)?;
                        if !self.array_next()? {
                            break;
                        }
                    }
                }
                Ok(())
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(drop),
        }
    }

    /// Consumes `{` and whitespace. Returns false (and consumes `}`) for an empty object.
    pub fn object_begin(&mut self) -> Result<bool, Invalid> {
        self.expect(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            Ok(false)
        } else {
            Ok(true)
        }
    }

    /// Parses a member name, the colon and the whitespace before the value.
    #[inline(always)]
    pub fn object_key(&mut self) -> Result<StrSpan, Invalid> {
        let key = self.string()?;
        self.ws();
        self.expect(b':')?;
        self.ws();
        Ok(key)
    }

    /// After a member value: true if another member follows (`,` consumed), false at `}`.
    pub fn object_next(&mut self) -> Result<bool, Invalid> {
        self.next_or_close(b'}')
    }

    /// Consumes `[` and whitespace. Returns false (and consumes `]`) for an empty array.
    pub fn array_begin(&mut self) -> Result<bool, Invalid> {
        self.expect(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            Ok(false)
        } else {
            Ok(true)
        }
    }

    /// After an element: true if another element follows (`,` consumed), false at `]`.
    pub fn array_next(&mut self) -> Result<bool, Invalid> {
        self.next_or_close(b']')
    }

    /// After a member or element: `,` (consumed, with the whitespace after it) → true; `close`
    /// (consumed) → false.
    #[inline(always)]
    fn next_or_close(&mut self, close: u8) -> Result<bool, Invalid> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.ws();
                Ok(true)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(Invalid),
        }
    }

    /// Parses a non-negative integer token count. Other numbers give 0; `null` gives 0.
    pub fn count(&mut self) -> Result<u64, Invalid> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            return Ok(0);
        }
        if self.peek() != Some(b'-') && self.peek().is_some_and(|b| b.is_ascii_digit()) {
            let range = self.number()?;
            let text = &self.buf[range];
            if text.iter().all(u8::is_ascii_digit) && text.len() <= 19 {
                return Ok(text
                    .iter()
                    .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')));
            }
            return Ok(0);
        }
        self.skip_value()?;
        Ok(0)
    }
}

/// Whether the member name `span` (in `buf`) equals `key`.
pub fn key_eq(buf: &[u8], span: &StrSpan, key: &[u8]) -> bool {
    let inner = &buf[span.inner()];
    if !span.escaped {
        return inner == key;
    }
    let mut decoded = Vec::with_capacity(inner.len());
    unescape_into(inner, &mut decoded);
    decoded == key
}

fn hex4(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0, |acc, &b| {
        acc * 16 + (b as char).to_digit(16).unwrap_or(0)
    })
}

/// Decodes the inside of a validated string literal, appending UTF-8 to `out`. Lone surrogates
/// become U+FFFD.
pub fn unescape_into(inner: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < inner.len() {
        let Some(offset) = memchr::memchr(b'\\', &inner[i..]) else {
            out.extend_from_slice(&inner[i..]);
            return;
        };
        out.extend_from_slice(&inner[i..i + offset]);
        i += offset;
        let simple = match inner.get(i + 1) {
            Some(b'n') => Some(b'\n'),
            Some(b't') => Some(b'\t'),
            Some(b'r') => Some(b'\r'),
            Some(b'b') => Some(0x08),
            Some(b'f') => Some(0x0c),
            Some(&c @ (b'"' | b'\\' | b'/')) => Some(c),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            i += 2;
            continue;
        }
        let Some(hex) = inner.get(i + 2..i + 6) else {
            return; // not reachable for validated input
        };
        let mut code = hex4(hex);
        i += 6;
        if (0xD800..0xDC00).contains(&code) {
            let low = inner
                .get(i..i + 6)
                .filter(|s| s.starts_with(b"\\u"))
                .map(|s| hex4(&s[2..]));
            if let Some(low @ 0xDC00..=0xDFFF) = low {
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                i += 6;
            }
        }
        let ch = char::from_u32(code).unwrap_or('\u{FFFD}');
        let mut utf8 = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
    }
}

/// Appends `text` as a JSON string literal (quotes included) to `out`.
pub fn escape_into(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(text.len() + 2);
    out.push(b'"');
    let bytes = text.as_bytes();
    // Most texts (ids, names) need no escape: one pass to check, one copy.
    if bytes.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(doc: &str) -> bool {
        let mut c = Cursor::new(doc.as_bytes());
        c.ws();
        c.skip_value().is_ok() && c.at_end()
    }

    #[test]
    fn accepts_valid_documents() {
        for doc in [
            "{}",
            "[]",
            " { \"a\" : [1, -2.5e+3, 0, true, false, null, \"x\\u00e9\\n\"] } ",
            "\"\\ud83d\\ude00\"",
            "-0.0E-0",
            "{\"a\":{\"b\":{\"c\":[[[]]]}}}",
        ] {
            assert!(valid(doc), "{doc}");
        }
    }

    #[test]
    fn rejects_invalid_documents() {
        for doc in [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "[1,]",
            "[1 2]",
            "01",
            "1.",
            "-",
            ".5",
            "1e",
            "tru",
            "nul",
            "\"abc",
            "\"a\\x\"",
            "\"\\u12g4\"",
            "\"tab\there\"",
            "{a:1}",
            "{\"a\":1}}",
            "'x'",
        ] {
            assert!(!valid(doc), "{doc:?}");
        }
    }

    #[test]
    fn depth_is_limited() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(!valid(&deep));
        let ok = "[".repeat(100) + &"]".repeat(100);
        assert!(valid(&ok));
    }

    #[test]
    fn unescapes_strings() {
        let mut out = Vec::new();
        unescape_into(br#"a\"b\\c\/\n\t\u00e9\ud83d\ude00\ud800x"#, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "a\"b\\c/\n\té😀\u{FFFD}x");
    }

    #[test]
    fn escapes_strings() {
        let mut out = Vec::new();
        escape_into("a\"b\\c\n\u{1}é", &mut out);
        assert_eq!(out, r#""a\"b\\c\n\u0001é""#.as_bytes());
    }

    #[test]
    fn compares_escaped_keys() {
        let doc = br#""mo\u0064el""#;
        let mut c = Cursor::new(doc);
        let span = c.string().unwrap();
        assert!(span.escaped);
        assert!(key_eq(doc, &span, b"model"));
        assert!(!key_eq(doc, &span, b"models"));
    }

    #[test]
    fn parses_counts() {
        for (doc, want) in [
            ("12", 12),
            ("0", 0),
            ("null", 0),
            ("1.5", 0),
            ("-3", 0),
            ("\"7\"", 0),
        ] {
            let mut c = Cursor::new(doc.as_bytes());
            assert_eq!(c.count(), Ok(want), "{doc}");
        }
    }
}
