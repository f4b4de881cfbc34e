//! Byte-preserving edits of a JSON object document: replace a top-level string member, or insert
//! a member first. Used to rewrite the model name and add request options without re-encoding
//! the body, so every other byte reaches the upstream (or the client) exactly as it was sent.

use std::ops::Range;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::json_scan::{escape_into, key_eq, Cursor, Invalid};

/// The string literals (quotes included) of every top-level member named `key`.
///
/// Returns `None` when `body` is not one valid JSON object, when `key` is absent at top level,
/// or when any member named `key` has a non-string value. Duplicates are all reported, so that
/// a rewrite leaves no stale copy for a parser that keeps the first or the last one.
pub fn top_level_string_spans(body: &[u8], key: &[u8]) -> Option<Vec<Range<usize>>> {
    scan_top_level(body, key).ok().flatten()
}

fn scan_top_level(body: &[u8], key: &[u8]) -> Result<Option<Vec<Range<usize>>>, Invalid> {
    let mut c = Cursor::new(body);
    c.ws();
    if c.peek() != Some(b'{') {
        return Ok(None);
    }
    let mut spans = Vec::new();
    let mut non_string = false;
    if c.object_begin()? {
        loop {
            let name = c.object_key()?;
            if key_eq(body, &name, key) {
                if c.peek() == Some(b'"') {
                    spans.push(c.string()?.literal);
                } else {
                    non_string = true;
                    c.skip_value()?;
                }
            } else {
                c.skip_value()?;
            }
            if !c.object_next()? {
                break;
            }
        }
    }
    if !c.at_end() || non_string || spans.is_empty() {
        return Ok(None);
    }
    Ok(Some(spans))
}

/// Length of `body` once every span is replaced by `literal`.
fn replaced_len(body: &[u8], spans: &[Range<usize>], literal: &[u8]) -> usize {
    let removed: usize = spans.iter().map(|s| s.len()).sum();
    body.len() - removed + spans.len() * literal.len()
}

/// Writes `body` with every span replaced by `literal` into `out` (exactly `replaced_len` long).
fn splice_into(body: &[u8], spans: &[Range<usize>], literal: &[u8], out: &mut [u8]) {
    let mut written = 0;
    let mut copied = 0;
    let mut put = |bytes: &[u8], written: &mut usize| {
        out[*written..*written + bytes.len()].copy_from_slice(bytes);
        *written += bytes.len();
    };
    for span in spans {
        put(&body[copied..span.start], &mut written);
        put(literal, &mut written);
        copied = span.end;
    }
    put(&body[copied..], &mut written);
}

/// `body` with the top-level string member `key` set to `value` (see [`top_level_string_spans`]).
pub fn replace_string_field(body: &[u8], key: &str, value: &str) -> Option<Vec<u8>> {
    let spans = top_level_string_spans(body, key.as_bytes())?;
    let mut literal = Vec::new();
    escape_into(value, &mut literal);
    let mut out = vec![0; replaced_len(body, &spans, &literal)];
    splice_into(body, &spans, &literal, &mut out);
    Some(out)
}

/// Where a first member goes: just after `{` and the whitespace that follows it, and whether
/// the object is empty there (then no comma follows the new member). `None` if `body` does not
/// start (after whitespace) with `{`.
pub fn first_member_point(body: &[u8]) -> Option<(usize, bool)> {
    let mut c = Cursor::new(body);
    c.ws();
    if c.peek() != Some(b'{') {
        return None;
    }
    c.pos += 1;
    c.ws();
    Some((c.pos, c.peek() == Some(b'}')))
}

/// The `"key":` prefix and separator pieces for an inserted member.
fn member_prefix(key: &str) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(key.len() + 3);
    escape_into(key, &mut prefix);
    prefix.push(b':');
    prefix
}

/// `body` with `"key":raw_value` inserted as the first member of the top-level object.
pub fn insert_first_member(body: &[u8], key: &str, raw_value: &[u8]) -> Option<Vec<u8>> {
    let (at, empty) = first_member_point(body)?;
    let prefix = member_prefix(key);
    let mut out = Vec::with_capacity(body.len() + prefix.len() + raw_value.len() + 1);
    out.extend_from_slice(&body[..at]);
    out.extend_from_slice(&prefix);
    out.extend_from_slice(raw_value);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(&body[at..]);
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Python layer

/// Replace the top-level string member `key` of the JSON object `body` with `value`.
#[pyfunction]
pub fn replace_json_string_field<'py>(
    py: Python<'py>,
    body: &[u8],
    key: &str,
    value: &str,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let Some(spans) = top_level_string_spans(body, key.as_bytes()) else {
        return Ok(None);
    };
    let mut literal = Vec::with_capacity(value.len() + 2);
    escape_into(value, &mut literal);
    let len = replaced_len(body, &spans, &literal);
    let out = PyBytes::new_with(py, len, |buf| {
        splice_into(body, &spans, &literal, buf);
        Ok(())
    })?;
    Ok(Some(out))
}

/// Insert `"key":raw_value` as the first member of the JSON object `body`.
#[pyfunction]
pub fn insert_json_member<'py>(
    py: Python<'py>,
    body: &[u8],
    key: &str,
    raw_value: &[u8],
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    if raw_value.is_empty() {
        return Err(PyValueError::new_err("raw_value must not be empty"));
    }
    let Some((at, empty)) = first_member_point(body) else {
        return Ok(None);
    };
    let prefix = member_prefix(key);
    let len = body.len() + prefix.len() + raw_value.len() + usize::from(!empty);
    let out = PyBytes::new_with(py, len, |buf| {
        let mut w = 0;
        let comma: &[u8] = if empty { b"" } else { b"," };
        for piece in [&body[..at], &prefix, raw_value, comma, &body[at..]] {
            buf[w..w + piece.len()].copy_from_slice(piece);
            w += piece.len();
        }
        Ok(())
    })?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace(body: &str, key: &str, value: &str) -> Option<String> {
        replace_string_field(body.as_bytes(), key, value).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn replaces_top_level_string_only() {
        let body = r#"{"messages":[{"role":"user","content":"{\"model\":\"x\"}","model":"in-msg"}],"meta":{"model":"nested"},"model":"gpt-4o","stream":true}"#;
        let want = body.replace(r#""model":"gpt-4o""#, r#""model":"my-alias""#);
        assert_eq!(
            replace(body, "model", "my-alias").as_deref(),
            Some(want.as_str())
        );
    }

    #[test]
    fn keeps_whitespace_around_colon() {
        let body = "{\n  \"model\" :\t \"a\" ,\n  \"n\": 1\n}\n";
        assert_eq!(
            replace(body, "model", "b").as_deref(),
            Some("{\n  \"model\" :\t \"b\" ,\n  \"n\": 1\n}\n")
        );
    }

    #[test]
    fn escapes_the_new_value() {
        let body = r#"{"model":"a"}"#;
        assert_eq!(
            replace(body, "model", "q\"uo\\te\nné😀").as_deref(),
            Some(r#"{"model":"q\"uo\\te\nné😀"}"#)
        );
    }

    #[test]
    fn handles_escaped_values_and_keys() {
        let body = r#"{"a":"x\"model\":\"y","mod\u0065l":"old \"quoted\" \u00e9","z":"\\"}"#;
        assert_eq!(
            replace(body, "model", "new").as_deref(),
            Some(r#"{"a":"x\"model\":\"y","mod\u0065l":"new","z":"\\"}"#)
        );
    }

    #[test]
    fn keeps_unicode_bytes() {
        let body = "{\"prompt\":\"héllo 世界 😀\",\"model\":\"m\"}";
        assert_eq!(
            replace(body, "model", "ü").as_deref(),
            Some("{\"prompt\":\"héllo 世界 😀\",\"model\":\"ü\"}")
        );
    }

    #[test]
    fn replaces_every_duplicate() {
        assert_eq!(
            replace(r#"{"model":"a","x":1,"model":"b"}"#, "model", "c").as_deref(),
            Some(r#"{"model":"c","x":1,"model":"c"}"#)
        );
    }

    #[test]
    fn returns_none_when_not_applicable() {
        for body in [
            r#"{"model":5}"#,
            r#"{"model":null}"#,
            r#"{"model":{"name":"x"}}"#,
            r#"{"model":"a","model":1}"#,
            r#"{"other":"x"}"#,
            r#"{"meta":{"model":"x"}}"#,
            r#"["model","x"]"#,
            r#""model""#,
            r#"{"model":"x""#,
            r#"{"model":"x"} trailing"#,
            r#"{"model":"x",}"#,
            "",
            "{}",
        ] {
            assert_eq!(replace(body, "model", "y"), None, "{body}");
        }
    }

    #[test]
    fn inserts_first_member() {
        let ins = |body: &str| {
            insert_first_member(
                body.as_bytes(),
                "stream_options",
                br#"{"include_usage":true}"#,
            )
            .map(|b| String::from_utf8(b).unwrap())
        };
        assert_eq!(
            ins(r#"{"model":"m"}"#).as_deref(),
            Some(r#"{"stream_options":{"include_usage":true},"model":"m"}"#)
        );
        assert_eq!(
            ins(" {\n  \"a\": 1}").as_deref(),
            Some(" {\n  \"stream_options\":{\"include_usage\":true},\"a\": 1}")
        );
        assert_eq!(
            ins("{}").as_deref(),
            Some(r#"{"stream_options":{"include_usage":true}}"#)
        );
        assert_eq!(
            ins("{ \n }").as_deref(),
            Some("{ \n \"stream_options\":{\"include_usage\":true}}")
        );
        assert_eq!(ins("[1]"), None);
        assert_eq!(ins(""), None);
        assert_eq!(ins("  "), None);
    }

    #[test]
    fn escapes_inserted_key() {
        let out = insert_first_member(b"{}", "a\"b", b"1").unwrap();
        assert_eq!(out, br#"{"a\"b":1}"#);
    }
}
