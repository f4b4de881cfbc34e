//! Token counting with tiktoken's BPE encodings, embedded in the binary (via tiktoken-rs) and
//! loaded once, on first use.

use std::borrow::Cow;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use tiktoken_rs::CoreBPE;

/// Texts longer than this (in UTF-8 bytes) are counted with the GIL released.
pub const DETACH_OVER: usize = 2048;

/// A supported BPE encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    O200kBase,
    Cl100kBase,
}

/// The encoding name is not one of `o200k_base`, `cl100k_base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEncoding(pub String);

impl std::fmt::Display for UnknownEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown encoding {:?} (expected 'o200k_base' or 'cl100k_base')",
            self.0
        )
    }
}

impl From<UnknownEncoding> for PyErr {
    fn from(err: UnknownEncoding) -> PyErr {
        PyValueError::new_err(err.to_string())
    }
}

impl Encoding {
    pub fn from_name(name: &str) -> Result<Self, UnknownEncoding> {
        match name {
            "o200k_base" => Ok(Encoding::O200kBase),
            "cl100k_base" => Ok(Encoding::Cl100kBase),
            other => Err(UnknownEncoding(other.to_owned())),
        }
    }

    /// The shared BPE tables (built on first use; tiktoken-rs keeps them in a `LazyLock`).
    pub fn bpe(self) -> &'static CoreBPE {
        match self {
            Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
            Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        }
    }

    /// Number of tokens in `text`, special-token text counted as ordinary text.
    pub fn count(self, text: &str) -> usize {
        if text.is_empty() {
            return 0;
        }
        self.bpe().count_ordinary(text)
    }
}

/// Counts `text`, releasing the GIL when it is long enough to be worth it.
pub fn count_detached(py: Python<'_>, encoding: Encoding, text: &str) -> usize {
    if text.len() > DETACH_OVER {
        py.detach(|| encoding.count(text))
    } else {
        encoding.count(text)
    }
}

// ---------------------------------------------------------------------------------------------
// Python layer

/// Number of tokens in `text` with the named encoding.
#[pyfunction]
#[pyo3(signature = (text, encoding = "o200k_base"))]
pub fn count_tokens(py: Python<'_>, text: &Bound<'_, PyString>, encoding: &str) -> PyResult<usize> {
    let encoding = Encoding::from_name(encoding)?;
    // Lone surrogates cannot be UTF-8 encoded; count them as U+FFFD instead of failing.
    let text: Cow<'_, str> = match text.to_str() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => text.to_string_lossy(),
    };
    Ok(count_detached(py, encoding, &text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!(Encoding::from_name("o200k_base"), Ok(Encoding::O200kBase));
        assert_eq!(Encoding::from_name("cl100k_base"), Ok(Encoding::Cl100kBase));
        assert!(Encoding::from_name("gpt2").is_err());
    }

    #[test]
    fn counts_known_strings() {
        for enc in [Encoding::O200kBase, Encoding::Cl100kBase] {
            assert_eq!(enc.count(""), 0);
            assert_eq!(enc.count("hello world"), 2);
            // Special tokens are ordinary text here.
            assert!(enc.count("<|endoftext|>") > 1);
        }
    }

    /// Ground truth from the tiktoken Python package (0.14.0, `encode_ordinary`).
    #[test]
    fn matches_tiktoken_python() {
        let mixed = "Héllo wörld — 你好，世界! 😀🚀 <|endoftext|> def f(x):\n    return x**2  # comment\n\n\n  tabs\tand   spaces";
        let code = "fn main() {\n    println!(\"{}\", 42);\n}\n".repeat(3);
        let pangram = "The quick brown fox jumps over the lazy dog. 1234567890 !@#$%^&*()";
        for (enc, want) in [
            (Encoding::O200kBase, [22, 40, 33]),
            (Encoding::Cl100kBase, [22, 43, 33]),
        ] {
            assert_eq!(
                [enc.count(pangram), enc.count(mixed), enc.count(&code)],
                want,
                "{enc:?}"
            );
        }
    }
}
