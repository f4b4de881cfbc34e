//! Scans the JSON of one OpenAI streaming chunk (`chat.completion.chunk` or legacy
//! `text_completion`) in a single pass, without building a tree: the top-level `model` literals,
//! `usage`, `error`, the first choice's `finish_reason`, and the spans of output text
//! (`delta.content`, `delta.reasoning_content`/`reasoning`, tool-call `arguments`, `text`).

use std::borrow::Cow;
use std::ops::Range;

use crate::json_scan::{unescape_into, Cursor, Invalid, StrSpan};

/// Token usage reported by the upstream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
    pub cached: u64,
    pub reasoning: u64,
}

/// Output text kinds, each counted in its own buffer per choice.
pub(crate) const CONTENT: usize = 0;
pub(crate) const REASONING: usize = 1;
pub(crate) const ARGUMENTS: usize = 2;
pub(crate) const KINDS: usize = 3;
/// Choices with a higher index share the last buffer.
pub(crate) const MAX_CHOICE_BUCKETS: usize = 16;

/// A string of output text inside the event's JSON.
#[derive(Debug, Clone)]
pub(crate) struct TextSpan {
    pub bucket: usize,
    pub escaped: bool,
    pub inner: Range<usize>,
}

/// What the scan of one JSON data event found.
#[derive(Debug, Default)]
pub(crate) struct Inspection {
    pub choices_empty: bool,
    pub usage: Option<Usage>,
    pub error: Option<Range<usize>>,
    pub finish_reason: Option<StrSpan>,
}

/// Member name bytes, unescaped only when needed.
#[inline(always)]
fn name<'a>(buf: &'a [u8], span: &StrSpan) -> Cow<'a, [u8]> {
    let inner = &buf[span.inner()];
    if span.escaped {
        let mut decoded = Vec::with_capacity(inner.len());
        unescape_into(inner, &mut decoded);
        Cow::Owned(decoded)
    } else {
        Cow::Borrowed(inner)
    }
}

/// Collects output text spans (when `texts` is given) and scans the rest.
struct Scan<'s> {
    texts: Option<&'s mut Vec<TextSpan>>,
}

impl Scan<'_> {
    fn text(&mut self, c: &mut Cursor<'_>, kind: usize) -> Result<(), Invalid> {
        if c.peek() != Some(b'"') {
            return c.skip_value();
        }
        let span = c.string()?;
        if let Some(texts) = self.texts.as_deref_mut() {
            if span.literal.len() > 2 {
                texts.push(TextSpan {
                    bucket: kind,
                    escaped: span.escaped,
                    inner: span.inner(),
                });
            }
        }
        Ok(())
    }

    fn object(
        &mut self,
        c: &mut Cursor<'_>,
        mut member: impl FnMut(&mut Self, &mut Cursor<'_>, &[u8]) -> Result<(), Invalid>,
    ) -> Result<(), Invalid> {
        if c.peek() != Some(b'{') {
            return c.skip_value();
        }
        if c.object_begin()? {
            loop {
                let key = c.object_key()?;
                let key = name(c.buf, &key);
                member(self, c, &key)?;
                if !c.object_next()? {
                    break;
                }
            }
        }
        Ok(())
    }

    fn array(
        &mut self,
        c: &mut Cursor<'_>,
        mut element: impl FnMut(&mut Self, &mut Cursor<'_>, usize) -> Result<(), Invalid>,
    ) -> Result<Option<usize>, Invalid> {
        if c.peek() != Some(b'[') {
            c.skip_value()?;
            return Ok(None);
        }
        let mut n = 0;
        if c.array_begin()? {
            loop {
                element(self, c, n)?;
                n += 1;
                if !c.array_next()? {
                    break;
                }
            }
        }
        Ok(Some(n))
    }

    fn delta(&mut self, c: &mut Cursor<'_>) -> Result<(), Invalid> {
        self.object(c, |s, c, key| match key {
            b"content" => s.text(c, CONTENT),
            b"reasoning_content" | b"reasoning" => s.text(c, REASONING),
            b"tool_calls" => s.array(c, |s, c, _| s.tool_call(c)).map(drop),
            _ => c.skip_value(),
        })
    }

    fn tool_call(&mut self, c: &mut Cursor<'_>) -> Result<(), Invalid> {
        self.object(c, |s, c, key| match key {
            b"function" => s.object(c, |s, c, key| match key {
                b"arguments" => s.text(c, ARGUMENTS),
                _ => c.skip_value(),
            }),
            _ => c.skip_value(),
        })
    }

    /// One element of `choices`; its text spans get the choice's bucket.
    fn choice(
        &mut self,
        c: &mut Cursor<'_>,
        position: usize,
        found: &mut Inspection,
    ) -> Result<(), Invalid> {
        let first = self.texts.as_deref().map_or(0, Vec::len);
        let mut index = position as u64;
        let mut finish = None;
        self.object(c, |s, c, key| match key {
            b"index" if c.peek().is_some_and(|b| b.is_ascii_digit()) => {
                index = c.count()?;
                Ok(())
            }
            b"delta" => s.delta(c),
            b"text" => s.text(c, CONTENT),
            b"finish_reason" if c.peek() == Some(b'"') => {
                finish = Some(c.string()?);
                Ok(())
            }
            _ => c.skip_value(),
        })?;
        let base = (index.min(MAX_CHOICE_BUCKETS as u64 - 1) as usize) * KINDS;
        if let Some(texts) = self.texts.as_deref_mut() {
            texts[first..].iter_mut().for_each(|t| t.bucket += base);
        }
        if index == 0 && finish.is_some() {
            found.finish_reason = finish;
        }
        Ok(())
    }
}

fn usage(c: &mut Cursor<'_>) -> Result<Usage, Invalid> {
    let mut usage = Usage::default();
    let mut scan = Scan { texts: None };
    scan.object(c, |s, c, key| match key {
        b"prompt_tokens" => c.count().map(|n| usage.prompt = n),
        b"completion_tokens" => c.count().map(|n| usage.completion = n),
        b"prompt_tokens_details" => s.object(c, |_, c, key| match key {
            b"cached_tokens" => c.count().map(|n| usage.cached = n),
            _ => c.skip_value(),
        }),
        b"completion_tokens_details" => s.object(c, |_, c, key| match key {
            b"reasoning_tokens" => c.count().map(|n| usage.reasoning = n),
            _ => c.skip_value(),
        }),
        _ => c.skip_value(),
    })?;
    Ok(usage)
}

/// Scans the JSON of one data event. Model literals go to `model_spans`, output text (when
/// `texts` is given) to `texts`; both hold ranges of `json`.
pub(crate) fn inspect(
    json: &[u8],
    model_spans: &mut Vec<Range<usize>>,
    texts: Option<&mut Vec<TextSpan>>,
) -> Result<Inspection, Invalid> {
    let mut c = Cursor::new(json);
    let mut found = Inspection::default();
    c.ws();
    let mut scan = Scan { texts };
    if c.peek() == Some(b'{') {
        scan.object(&mut c, |s, c, key| match key {
            b"model" if c.peek() == Some(b'"') => {
                model_spans.push(c.string()?.literal);
                Ok(())
            }
            b"choices" => {
                let n = s.array(c, |s, c, i| s.choice(c, i, &mut found))?;
                found.choices_empty = n == Some(0);
                Ok(())
            }
            b"usage" if c.peek() == Some(b'{') => {
                found.usage = Some(usage(c)?);
                Ok(())
            }
            b"error" if c.peek() == Some(b'{') => {
                let start = c.pos;
                c.skip_value()?;
                found.error = Some(start..c.pos);
                Ok(())
            }
            _ => c.skip_value(),
        })?;
    } else {
        c.skip_value()?;
    }
    if !c.at_end() {
        return Err(Invalid);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(
        json: &str,
    ) -> (
        Result<Inspection, Invalid>,
        Vec<Range<usize>>,
        Vec<TextSpan>,
    ) {
        let (mut models, mut texts) = (Vec::new(), Vec::new());
        let found = inspect(json.as_bytes(), &mut models, Some(&mut texts));
        (found, models, texts)
    }

    #[test]
    fn reads_usage_with_missing_and_null_fields() {
        let (found, _, _) = scan(
            r#"{"usage":{"prompt_tokens":3,"completion_tokens":null,"prompt_tokens_details":null,"completion_tokens_details":{"reasoning_tokens":2,"x":[1]},"total_tokens":5}}"#,
        );
        let usage = found.unwrap().usage.unwrap();
        assert_eq!(
            usage,
            Usage {
                prompt: 3,
                completion: 0,
                cached: 0,
                reasoning: 2
            }
        );
    }

    #[test]
    fn escaped_member_names_match() {
        let json = r#"{"mod\u0065l":"m","choices":[{"d\u0065lta":{"content":"a\nb"}}]}"#;
        let (found, models, texts) = scan(json);
        assert!(!found.unwrap().choices_empty);
        assert_eq!(&json[models[0].clone()], "\"m\"");
        assert_eq!(texts.len(), 1);
        assert!(texts[0].escaped);
    }

    #[test]
    fn finish_reason_of_first_choice_only() {
        let (found, _, texts) = scan(
            r#"{"choices":[{"index":1,"finish_reason":"length","text":"x"},{"index":0,"finish_reason":null}]}"#,
        );
        assert!(found.unwrap().finish_reason.is_none());
        assert_eq!(texts[0].bucket, KINDS + CONTENT);
    }

    #[test]
    fn rejects_invalid_json_anywhere() {
        for json in [
            r#"{"choices":[{"delta":{"content":"x"}]}"#,
            r#"{"usage":{"prompt_tokens":1,}}"#,
            "{} {}",
        ] {
            assert!(scan(json).0.is_err(), "{json}");
        }
    }
}
