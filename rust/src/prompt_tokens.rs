//! Tokens of the prompt text of an OpenAI-format request body, counted straight from its bytes.
//!
//! Rate limits and budgets admit a request on this estimate, so it runs on every limited request:
//! one pass of the JSON cursor collects the texts of `messages[].content` (a string, or parts that
//! are strings or objects with a `text` string), `prompt` and `input` (the same shapes), without
//! building a tree or any Python object. The estimate is the sum of each text's tokens plus one per
//! newline that would join them (messages first, then prompt, then input).
//!
//! Each text's count is remembered (`TextCounts`, keyed by the text itself): the same system
//! prompt, the earlier turns of a conversation re-sent with every new one, a benchmark's repeated
//! prompt are tokenized once. That matters more than it looks: BPE walks tables of 100k-200k
//! entries, and between two requests of a busy server they leave the CPU caches, so a count costs a
//! few times what it does in a tight loop (7 µs for a 20-word prompt in the server, 1.6 µs in a
//! microbenchmark); a remembered count is one keyed hash and one comparison of the text.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

use pyo3::prelude::*;

use crate::json_scan::{key_eq, unescape_into, Cursor, Invalid, StrSpan};
use crate::tokens::{count_detached, Encoding};

/// Remembered counts at most; the maps start over when full (a burst of new texts costs a recount).
const REMEMBERED_TEXTS: usize = 1 << 16;

/// Bytes of remembered text at most, over both encodings: each entry keeps its text, so memory is
/// bounded by bytes as well as by entries.
const REMEMBERED_BYTES: usize = 16 << 20;

/// A text longer than this is counted every time, never remembered (one such text must not evict
/// thousands of short ones).
const REMEMBERED_TEXT_MAX: usize = 1 << 20;

/// Remembered counts, one map per encoding, keyed by the text itself.
///
/// The key is the whole text, not a digest of it: a hit compares the stored bytes, so two
/// different prompts can never share a count. (An earlier unkeyed 64-bit hash let a client forge a
/// collision in a few thousand tries and have a long prompt admitted, routed and billed as a short
/// one, or poison another tenant's count.) The maps hash with std's `RandomState`, SipHash-1-3
/// under a key drawn from the OS at start, so a client cannot aim texts at one bucket either.
struct TextCounts {
    maps: [HashMap<Box<[u8]>, u32>; 2],
    bytes: usize,
}

impl TextCounts {
    fn new() -> Self {
        TextCounts {
            maps: [HashMap::new(), HashMap::new()],
            bytes: 0,
        }
    }

    fn slot(encoding: Encoding) -> usize {
        match encoding {
            Encoding::O200kBase => 0,
            Encoding::Cl100kBase => 1,
        }
    }

    fn get(&self, encoding: Encoding, text: &[u8]) -> Option<u32> {
        self.maps[Self::slot(encoding)].get(text).copied()
    }

    fn insert(&mut self, encoding: Encoding, text: &[u8], count: u32) {
        if text.len() > REMEMBERED_TEXT_MAX {
            return;
        }
        let entries: usize = self.maps.iter().map(HashMap::len).sum();
        if entries >= REMEMBERED_TEXTS || self.bytes + text.len() > REMEMBERED_BYTES {
            for map in &mut self.maps {
                map.clear();
            }
            self.bytes = 0;
        }
        if self.maps[Self::slot(encoding)]
            .insert(text.into(), count)
            .is_none()
        {
            self.bytes += text.len();
        }
    }
}

/// Counts of texts seen.
static TEXT_COUNTS: Mutex<Option<TextCounts>> = Mutex::new(None);

/// Tokens of one text, remembered.
fn count_text(py: Python<'_>, encoding: Encoding, text: &[u8]) -> usize {
    if text.is_empty() {
        return 0;
    }
    if let Some(count) = TEXT_COUNTS
        .lock()
        .ok()
        .and_then(|counts| counts.as_ref()?.get(encoding, text))
    {
        return count as usize;
    }
    let count = match std::str::from_utf8(text) {
        Ok(s) => count_detached(py, encoding, s),
        Err(_) => count_detached(py, encoding, &String::from_utf8_lossy(text)),
    };
    if let Ok(mut guard) = TEXT_COUNTS.lock() {
        guard.get_or_insert_with(TextCounts::new).insert(
            encoding,
            text,
            u32::try_from(count).unwrap_or(u32::MAX),
        );
    }
    count
}

/// The texts found in a body, by where they go: messages, prompt, input. A text without escapes
/// is the body's own bytes; only an escaped one is copied (unescaped).
#[derive(Default)]
pub(crate) struct PromptTexts<'a> {
    parts: [Vec<Cow<'a, [u8]>>; 3],
}

impl<'a> PromptTexts<'a> {
    fn push(&mut self, which: usize, buf: &'a [u8], span: &StrSpan) {
        let inner = &buf[span.inner()];
        let text = if span.escaped {
            let mut text = Vec::with_capacity(inner.len());
            unescape_into(inner, &mut text);
            Cow::Owned(text)
        } else {
            Cow::Borrowed(inner)
        };
        self.parts[which].push(text);
    }

    pub(crate) fn texts(&self) -> impl Iterator<Item = &[u8]> {
        self.parts.iter().flatten().map(|text| &**text)
    }
}

pub(crate) fn collect(body: &[u8]) -> Result<PromptTexts<'_>, Invalid> {
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

fn messages<'a>(
    c: &mut Cursor<'_>,
    body: &'a [u8],
    texts: &mut PromptTexts<'a>,
) -> Result<(), Invalid> {
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
fn content<'a>(
    c: &mut Cursor<'_>,
    body: &'a [u8],
    texts: &mut PromptTexts<'a>,
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

fn part<'a>(
    c: &mut Cursor<'_>,
    body: &'a [u8],
    texts: &mut PromptTexts<'a>,
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
    let Ok(texts) = collect(body) else {
        return Ok(0);
    };
    let mut total = 0usize;
    let mut n = 0usize;
    for text in texts.texts() {
        total += count_text(py, encoding, text);
        n += 1;
    }
    Ok(total + n.saturating_sub(1)) // the newlines that join them
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn texts(body: &str) -> Option<Vec<String>> {
        let texts = collect(body.as_bytes()).ok()?;
        Some(
            texts
                .texts()
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .collect(),
        )
    }

    #[test]
    fn collects_messages_prompt_and_input_in_order() {
        let body = r#"{"input":"c","model":"m","prompt":["b1",{"text":"b2"}],
            "messages":[{"role":"system","content":"a1"},
                        {"role":"user","content":[{"type":"text","text":"a\"2"},{"type":"image_url","image_url":{"url":"x"}}]},
                        {"role":"assistant","content":null,"tool_calls":[]}]}"#;
        assert_eq!(texts(body).unwrap(), ["a1", "a\"2", "b1", "b2", "c"]);
    }

    #[test]
    fn ignores_non_text_shapes_and_rejects_invalid_json() {
        assert!(texts(r#"{"messages":[1,"x",{"content":5}],"prompt":7}"#)
            .unwrap()
            .is_empty());
        assert!(texts(r#"{"input":[[1,2,3]]}"#).unwrap().is_empty());
        assert_eq!(
            texts(r#"{"messages":[{"content":""},{"content":"a"}]}"#).unwrap(),
            ["", "a"]
        );
        assert_eq!(texts(r#"{"messages":[{"content":"a"}]"#), None);
        assert_eq!(texts(r#"[1]"#), None);
        assert_eq!(texts(r#"{"messages":[]} x"#), None);
    }

    #[test]
    fn unescapes_and_keeps_non_ascii() {
        assert_eq!(
            texts(r#"{"prompt":"caf\u00e9 \n ok"}"#).unwrap(),
            ["café \n ok"]
        );
        assert_eq!(texts("{\"prompt\":\"日本\"}").unwrap(), ["日本"]);
    }

    #[test]
    fn counts_are_remembered_per_text_and_encoding() {
        Python::initialize();
        Python::attach(|py| {
            let text = "remembered text for the prompt-token cache test".as_bytes();
            let first = count_text(py, Encoding::O200kBase, text);
            assert_eq!(
                first,
                Encoding::O200kBase.count(std::str::from_utf8(text).unwrap())
            );
            assert_eq!(count_text(py, Encoding::O200kBase, text), first);
            let remembered = |encoding| {
                TEXT_COUNTS
                    .lock()
                    .unwrap()
                    .as_ref()
                    .unwrap()
                    .get(encoding, text)
            };
            assert_eq!(remembered(Encoding::O200kBase), Some(first as u32));
            count_text(py, Encoding::Cl100kBase, text);
            assert!(remembered(Encoding::Cl100kBase).is_some());
        });
    }

    /// The attack on the old cache: a text whose key collides with a remembered one took its
    /// count. Keys are now the texts themselves, so even a planted entry for one text (standing in
    /// for any hash collision) is never returned for another of the same length.
    #[test]
    fn a_colliding_text_never_takes_another_texts_count() {
        let mut counts = TextCounts::new();
        counts.insert(Encoding::O200kBase, b"short prompt AAAA", 3);
        assert_eq!(
            counts.get(Encoding::O200kBase, b"short prompt AAAA"),
            Some(3)
        );
        assert_eq!(counts.get(Encoding::O200kBase, b"short prompt AAAB"), None);
        assert_eq!(counts.get(Encoding::Cl100kBase, b"short prompt AAAA"), None);

        // Every map of the cache hashes under its own random key (SipHash-1-3, seeded by the OS):
        // the same text lands on different hashes in two maps, so no precomputed collision list
        // carries over from one process (or map) to another.
        let a = TextCounts::new();
        let (h0, h1) = (
            a.maps[0].hasher().hash_one(b"x".as_slice()),
            a.maps[1].hasher().hash_one(b"x".as_slice()),
        );
        assert_ne!(h0, h1);
    }

    #[test]
    fn memory_is_bounded_by_entries_and_bytes() {
        let mut counts = TextCounts::new();
        let big = vec![b'a'; REMEMBERED_TEXT_MAX + 1];
        counts.insert(Encoding::O200kBase, &big, 1);
        assert_eq!(counts.get(Encoding::O200kBase, &big), None);
        assert_eq!(counts.bytes, 0);

        let chunk = vec![b'b'; REMEMBERED_TEXT_MAX];
        for i in 0..(REMEMBERED_BYTES / REMEMBERED_TEXT_MAX) {
            let mut text = chunk.clone();
            text[0] = i as u8;
            counts.insert(Encoding::O200kBase, &text, 1);
        }
        assert_eq!(counts.bytes, REMEMBERED_BYTES);
        counts.insert(Encoding::Cl100kBase, b"one more", 2);
        assert_eq!(counts.bytes, 8);
        assert_eq!(counts.get(Encoding::Cl100kBase, b"one more"), Some(2));
        assert_eq!(counts.maps[0].len(), 0);

        for i in 0..REMEMBERED_TEXTS as u32 {
            counts.insert(Encoding::O200kBase, &i.to_le_bytes(), 1);
        }
        assert!(counts.maps.iter().map(HashMap::len).sum::<usize>() <= REMEMBERED_TEXTS);
        assert_eq!(counts.get(Encoding::Cl100kBase, b"one more"), None);
    }
}
