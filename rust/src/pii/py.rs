//! The Python layer of the PII scanner: spans as character offsets, the GIL released on long texts.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::{builtin_kinds, PiiScanner};

// About 10 µs of scanning: below it, releasing the GIL costs more than it frees.
const DETACH_OVER: usize = 4096;

/// `gatecore._core.PiiScanner`: entity types compiled once per guard, shared by every request.
#[pyclass(name = "PiiScanner", module = "gatecore._core", frozen)]
pub struct PyPiiScanner {
    inner: PiiScanner,
}

#[pymethods]
impl PyPiiScanner {
    #[new]
    #[pyo3(signature = (builtins, custom = Vec::new()))]
    fn new(builtins: Vec<String>, custom: Vec<(String, String)>) -> PyResult<Self> {
        PiiScanner::new(&builtins, &custom)
            .map(|inner| Self { inner })
            .map_err(PyValueError::new_err)
    }

    /// The entity type names, indexed by a match's first member.
    #[getter]
    fn kinds(&self) -> Vec<String> {
        self.inner.kinds().to_vec()
    }

    /// The built-in entity type names.
    #[staticmethod]
    fn builtin_kinds() -> Vec<&'static str> {
        builtin_kinds()
    }

    /// `(kind, start, end)` of every entity in `text`, ordered, character offsets.
    fn scan(&self, py: Python<'_>, text: &str) -> Vec<(usize, usize, usize)> {
        let found = if text.len() > DETACH_OVER {
            py.detach(|| self.inner.scan(text))
        } else {
            self.inner.scan(text)
        };
        if found.is_empty() {
            return Vec::new();
        }
        if text.is_ascii() {
            return found.iter().map(|m| (m.kind, m.start, m.end)).collect();
        }
        // Byte offsets → character offsets, in one walk (the matches are ordered and disjoint).
        let mut out = Vec::with_capacity(found.len());
        let mut chars = 0;
        let mut byte = 0;
        let bytes = text.as_bytes();
        let advance = |to: usize, chars: &mut usize, byte: &mut usize| {
            while *byte < to {
                if bytes[*byte] & 0xC0 != 0x80 {
                    *chars += 1;
                }
                *byte += 1;
            }
        };
        for m in found {
            advance(m.start, &mut chars, &mut byte);
            let start = chars;
            advance(m.end, &mut chars, &mut byte);
            out.push((m.kind, start, chars));
        }
        out
    }
}
