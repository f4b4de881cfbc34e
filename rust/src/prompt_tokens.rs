//! Tokens of the prompt text of an OpenAI-format request body, counted straight from its bytes.
//!
//! Rate limits and budgets admit a request on this estimate, so it runs on every limited request:
//! one pass of the JSON cursor collects the text of `messages[].content` (a string, or parts that
//! are strings or objects with a `text` string), `prompt` and `input` (the same shapes), without
//! building a tree or any Python object. The texts are joined with newlines, messages first, then
//! prompt, then input, and counted once.

use pyo3::prelude::*;

use crate::json_scan::{key_eq, unescape_into, Cursor, Invalid, StrSpan};
use crate::tokens::{count_detached, Encoding};

/// Where a text found in the body goes: messages, prompt or input.
#[derive(Default)]
struct PromptTexts {
    parts: [Vec<u8>; 3],
    counts: [usize; 3], // texts in each part (an empty text still takes its newline)
}

impl PromptTexts {
    fn push(&mut self, which: usize, buf: &[u8], span: &StrSpan) {
        let out = &mut self.parts[which];
        if self.counts[which] > 0 {
            out.push(b'\n');
        }
        self.counts[which] += 1;
        if span.escaped {
            unescape_into(&buf[span.inner()], out);
        } else {
            out.extend_from_slice(&buf[span.inner()]);
        }
    }

    fn joined(self) -> String {
        let mut text = Vec::new();
        let mut any = false;
        for (part, count) in self.parts.into_iter().zip(self.counts) {
            if count == 0 {
                continue;
            }
            if any {
                text.push(b'\n');
            }
            any = true;
            text.extend_from_slice(&part);
        }
        String::from_utf8(text)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// The prompt text of `body` (see the module doc); None when it is not a JSON object.
pub fn prompt_text(body: &[u8]) -> Option<String> {
    collect(body).ok().map(PromptTexts::joined)
}

fn collect(body: &[u8]) -> Result<PromptTexts, Invalid> {
    let mut texts = PromptTexts::default();
    let mut c = Cursor::new(body);
    c.ws();
    if c.peek() != Some(b'{') {
        return Err(Invalid);
    }
    if c.object_begin()? {
        loop {
            let name = c.object_key()?;
            if key_eq(body, &name, b"messages") && c.peek() == Some(b'[') {
                messages(&mut c, body, &mut texts)?;
            } else if key_eq(body, &name, b"prompt") {
                content(&mut c, body, &mut texts, 1)?;
            } else if key_eq(body, &name, b"input") {
                content(&mut c, body, &mut texts, 2)?;
            } else {
                c.skip_value()?;
            }
            if !c.object_next()? {
                break;
            }
        }
    }
    if !c.at_end() {
        return Err(Invalid);
    }
    Ok(texts)
}

fn messages(c: &mut Cursor<'_>, body: &[u8], texts: &mut PromptTexts) -> Result<(), Invalid> {
    if !c.array_begin()? {
        return Ok(());
    }
    loop {
        if c.peek() == Some(b'{') {
            if c.object_begin()? {
                loop {
                    let name = c.object_key()?;
                    if key_eq(body, &name, b"content") {
                        content(c, body, texts, 0)?;
                    } else {
                        c.skip_value()?;
                    }
                    if !c.object_next()? {
                        break;
                    }
                }
            }
        } else {
            c.skip_value()?;
        }
        if !c.array_next()? {
            return Ok(());
        }
    }
}

/// A content value: a string, or an array of strings and `{"text": "..."}` parts.
fn content(
    c: &mut Cursor<'_>,
    body: &[u8],
    texts: &mut PromptTexts,
    which: usize,
) -> Result<(), Invalid> {
    match c.peek() {
        Some(b'"') => {
            let span = c.string()?;
            texts.push(which, body, &span);
            Ok(())
        }
        Some(b'[') => {
            if !c.array_begin()? {
                return Ok(());
            }
            loop {
                match c.peek() {
                    Some(b'"') => {
                        let span = c.string()?;
                        texts.push(which, body, &span);
                    }
                    Some(b'{') => part(c, body, texts, which)?,
                    _ => c.skip_value()?,
                }
                if !c.array_next()? {
                    return Ok(());
                }
            }
        }
        _ => c.skip_value(),
    }
}

fn part(
    c: &mut Cursor<'_>,
    body: &[u8],
    texts: &mut PromptTexts,
    which: usize,
) -> Result<(), Invalid> {
    if !c.object_begin()? {
        return Ok(());
    }
    loop {
        let name = c.object_key()?;
        if key_eq(body, &name, b"text") && c.peek() == Some(b'"') {
            let span = c.string()?;
            texts.push(which, body, &span);
        } else {
            c.skip_value()?;
        }
        if !c.object_next()? {
            return Ok(());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Python layer

/// Tokens of the prompt text of an OpenAI-format request body (0 when it is not a JSON object).
#[pyfunction]
#[pyo3(signature = (body, encoding = "o200k_base"))]
pub fn count_prompt_tokens(py: Python<'_>, body: &[u8], encoding: &str) -> PyResult<usize> {
    let encoding = Encoding::from_name(encoding)?;
    Ok(match prompt_text(body) {
        Some(text) => count_detached(py, encoding, &text),
        None => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(body: &str) -> Option<String> {
        prompt_text(body.as_bytes())
    }

    #[test]
    fn collects_messages_prompt_and_input_in_order() {
        let body = r#"{"input":"c","model":"m","prompt":["b1",{"text":"b2"}],
            "messages":[{"role":"system","content":"a1"},
                        {"role":"user","content":[{"type":"text","text":"a\"2"},{"type":"image_url","image_url":{"url":"x"}}]},
                        {"role":"assistant","content":null,"tool_calls":[]}]}"#;
        assert_eq!(text(body).as_deref(), Some("a1\na\"2\nb1\nb2\nc"));
    }

    #[test]
    fn ignores_non_text_shapes_and_rejects_invalid_json() {
        assert_eq!(
            text(r#"{"messages":[1,"x",{"content":5}],"prompt":7}"#).as_deref(),
            Some("")
        );
        assert_eq!(text(r#"{"input":[[1,2,3]]}"#).as_deref(), Some(""));
        // Empty texts still join with newlines, like the texts around them.
        assert_eq!(
            text(r#"{"messages":[{"content":""},{"content":"a"}],"input":""}"#).as_deref(),
            Some("\na\n")
        );
        assert_eq!(text(r#"{"messages":[{"content":"a"}]"#), None);
        assert_eq!(text(r#"[1]"#), None);
        assert_eq!(text(r#"{"messages":[]} x"#), None);
    }

    #[test]
    fn unescapes_and_keeps_non_ascii() {
        assert_eq!(
            text(r#"{"prompt":"caf\u00e9 \n ok"}"#).as_deref(),
            Some("café \n ok")
        );
        assert_eq!(text("{\"prompt\":\"日本\"}").as_deref(), Some("日本"));
    }
}
