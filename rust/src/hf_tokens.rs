//! Exact token counts with a served model's own Hugging Face tokenizer (`tokenizer.json`, read from a
//! local file when the config is compiled; never downloaded).
//!
//! A deployment that names one has its prompts counted with it instead of a tiktoken estimate: tpm
//! admission, budgets, context-window routing, the fair queue's cost and counted usage then agree
//! with what the engine bills. The prompt's texts are found as for tiktoken (prompt_tokens.rs: one
//! pass over the body's bytes) and each text's count is remembered per tokenizer, keyed by the text
//! itself under std's per-process random SipHash key (no digest collision can be forged to have a
//! long prompt counted as a short one). Encoding (`encode_fast`: no offsets) runs with the GIL
//! released past 256 bytes: a Hugging Face pipeline costs ~0.3-0.6 ms per KB here, about ten times
//! tiktoken (benches/README.md), so remembered counts matter more than for tiktoken.

use std::collections::HashMap;
use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use tokenizers::Tokenizer;

use crate::prompt_tokens::collect;

/// Remembered counts at most per tokenizer; the map starts over when full.
const REMEMBERED_TEXTS: usize = 1 << 16;
/// Bytes of remembered text at most per tokenizer.
const REMEMBERED_BYTES: usize = 16 << 20;
/// A text longer than this is counted every time, never remembered.
const REMEMBERED_TEXT_MAX: usize = 1 << 20;
/// Texts longer than this (UTF-8 bytes) are counted with the GIL released (a Hugging Face encode
/// passes ~10 µs well before tiktoken's 2 KB).
const DETACH_OVER: usize = 256;

/// A loaded tokenizer and the counts of texts it has seen.
pub struct HfCounter {
    tokenizer: Tokenizer,
    remembered: Mutex<Remembered>,
}

#[derive(Default)]
struct Remembered {
    counts: HashMap<Box<[u8]>, u32>,
    bytes: usize,
}

impl HfCounter {
    /// A counter over a `tokenizer.json` document.
    pub fn from_json(json: &[u8]) -> Result<Self, String> {
        let tokenizer = Tokenizer::from_bytes(json).map_err(|e| e.to_string())?;
        Ok(HfCounter {
            tokenizer,
            remembered: Mutex::new(Remembered::default()),
        })
    }

    /// Tokens of `text`, without the special tokens a template or `add_special_tokens` would add.
    pub fn count(&self, text: &str) -> Result<usize, String> {
        if text.is_empty() {
            return Ok(0);
        }
        self.tokenizer
            .encode_fast(text, false)
            .map(|encoding| encoding.get_ids().len())
            .map_err(|e| e.to_string())
    }

    fn recall(&self, text: &[u8]) -> Option<usize> {
        let remembered = self.remembered.lock().ok()?;
        remembered.counts.get(text).map(|&count| count as usize)
    }

    fn remember(&self, text: &[u8], count: usize) {
        if text.len() > REMEMBERED_TEXT_MAX {
            return;
        }
        let Ok(mut remembered) = self.remembered.lock() else {
            return;
        };
        if remembered.counts.len() >= REMEMBERED_TEXTS
            || remembered.bytes + text.len() > REMEMBERED_BYTES
        {
            remembered.counts.clear();
            remembered.bytes = 0;
        }
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        if remembered.counts.insert(text.into(), count).is_none() {
            remembered.bytes += text.len();
        }
    }

    /// Tokens of one text, remembered (an encode error counts as its bytes: never fewer than real).
    fn count_text(&self, text: &[u8]) -> usize {
        if text.is_empty() {
            return 0;
        }
        if let Some(count) = self.recall(text) {
            return count;
        }
        let count = self
            .count(&String::from_utf8_lossy(text))
            .unwrap_or(text.len());
        self.remember(text, count);
        count
    }

    /// Tokens of the prompt text of an OpenAI-format request body: each text's tokens plus one per
    /// newline joining them (0 when the body is not a JSON object).
    pub fn count_prompt(&self, body: &[u8]) -> usize {
        let Ok(texts) = collect(body) else {
            return 0;
        };
        let mut total = 0usize;
        let mut n = 0usize;
        for text in texts.texts() {
            total += self.count_text(text);
            n += 1;
        }
        total + n.saturating_sub(1)
    }
}

// ---------------------------------------------------------------------------------------------
// Python layer

/// A Hugging Face tokenizer loaded from a local `tokenizer.json`.
#[pyclass(name = "HfTokenizer", module = "gatecore._core", frozen)]
pub struct PyHfTokenizer {
    inner: HfCounter,
}

#[pymethods]
impl PyHfTokenizer {
    /// Load `path` (a `tokenizer.json`); ValueError when it cannot be read or parsed.
    #[new]
    fn new(py: Python<'_>, path: &str) -> PyResult<Self> {
        let path = path.to_owned();
        let loaded = py.detach(move || {
            let json = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
            HfCounter::from_json(&json).map_err(|e| format!("{path}: {e}"))
        });
        loaded
            .map(|inner| PyHfTokenizer { inner })
            .map_err(PyValueError::new_err)
    }

    /// Tokens of `text` (no special tokens added).
    fn count(&self, py: Python<'_>, text: &str) -> PyResult<usize> {
        let inner = &self.inner;
        let counted = if text.len() > DETACH_OVER {
            py.detach(|| inner.count(text))
        } else {
            inner.count(text)
        };
        counted.map_err(PyValueError::new_err)
    }

    /// Tokens of the prompt text of an OpenAI-format request body (as `count_prompt_tokens`).
    fn count_prompt(&self, py: Python<'_>, body: &[u8]) -> usize {
        let inner = &self.inner;
        if body.len() > DETACH_OVER {
            py.detach(|| inner.count_prompt(body))
        } else {
            inner.count_prompt(body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A word-level tokenizer: whitespace pre-tokenizer, a four-word vocabulary.
    const WORDS: &str = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
        "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
        "model":{"type":"WordLevel","vocab":{"[UNK]":0,"hello":1,"world":2,"again":3},
        "unk_token":"[UNK]"}}"#;

    #[test]
    fn counts_texts_and_prompts() {
        let counter = HfCounter::from_json(WORDS.as_bytes()).unwrap();
        assert_eq!(counter.count("hello world").unwrap(), 2);
        assert_eq!(counter.count("").unwrap(), 0);
        let body = br#"{"messages":[{"role":"system","content":"hello"},{"role":"user","content":"hello world again"}]}"#;
        assert_eq!(counter.count_prompt(body), 1 + 3 + 1); // texts plus the newline joining them
        assert_eq!(counter.count_prompt(body), 5); // remembered
        assert_eq!(counter.count_prompt(b"[1,2]"), 0);
    }

    #[test]
    fn rejects_what_is_not_a_tokenizer() {
        assert!(HfCounter::from_json(b"{\"model\": 3}").is_err());
    }
}
