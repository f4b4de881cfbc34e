//! JSON Lines with a fixed set of fields, each line written straight into one buffer: the access log.
//!
//! A line is a tuple of values in the fields' order; its object is formatted here without building
//! a dict or a struct in Python (the access log cost 3 µs a request in the server that way).

use std::io::Write;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyString, PyTuple};

use crate::json_scan::escape_into;

/// A float as JSON: the shortest text that reads back as the same number; null when not finite.
pub fn push_json_float(out: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        let start = out.len();
        let _ = write!(out, "{value}"); // writing to a Vec cannot fail
        if !out[start..]
            .iter()
            .any(|&b| b == b'.' || b == b'e' || b == b'E')
        {
            out.extend_from_slice(b".0"); // stays a float for readers that type by syntax
        }
    } else {
        out.extend_from_slice(b"null");
    }
}

#[pyclass(name = "JsonLines", module = "gatecore._core")]
pub struct PyJsonLines {
    /// Per field: `{"name":` for the first, `,"name":` after.
    keys: Vec<Vec<u8>>,
    buffer: Vec<u8>,
}

#[pymethods]
impl PyJsonLines {
    #[new]
    fn new(fields: Vec<String>) -> Self {
        let keys = fields
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut key = vec![if i == 0 { b'{' } else { b',' }];
                escape_into(name, &mut key);
                key.push(b':');
                key
            })
            .collect();
        PyJsonLines {
            keys,
            buffer: Vec::with_capacity(1 << 16),
        }
    }

    /// One line: `values` in the fields' order (None, bool, int, float or str).
    fn add(&mut self, values: &Bound<'_, PyTuple>) -> PyResult<()> {
        if values.len() != self.keys.len() {
            return Err(PyValueError::new_err(format!(
                "{} values for {} fields",
                values.len(),
                self.keys.len()
            )));
        }
        let mark = self.buffer.len();
        for (key, value) in self.keys.iter().zip(values.iter_borrowed()) {
            self.buffer.extend_from_slice(key);
            if let Err(error) = push_value(&mut self.buffer, &value) {
                self.buffer.truncate(mark); // no half line
                return Err(error);
            }
        }
        self.buffer.extend_from_slice(b"}\n");
        Ok(())
    }

    /// A line formatted elsewhere (it must be one JSON object without a newline); `\n` is added.
    fn add_raw(&mut self, line: &[u8]) {
        self.buffer.extend_from_slice(line);
        self.buffer.push(b'\n');
    }

    /// Every line added since the last take, and forget them.
    fn take<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let out = PyBytes::new(py, &self.buffer);
        self.buffer.clear();
        out
    }

    fn __len__(&self) -> usize {
        self.buffer.len()
    }
}

fn push_value(out: &mut Vec<u8>, value: &Borrowed<'_, '_, PyAny>) -> PyResult<()> {
    if value.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(text) = value.cast::<PyString>() {
        escape_into(text.to_str()?, out);
    } else if let Ok(flag) = value.cast::<PyBool>() {
        out.extend_from_slice(if flag.is_true() { b"true" } else { b"false" });
    } else if value.is_instance_of::<PyInt>() {
        match value.extract::<i64>() {
            Ok(number) => write!(out, "{number}"),
            Err(_) => write!(out, "{}", value.extract::<i128>()?),
        }
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    } else if let Ok(number) = value.cast::<PyFloat>() {
        push_json_float(out, number.value());
    } else {
        return Err(PyValueError::new_err(format!(
            "cannot write a {} as JSON",
            value.get_type().name()?
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> String {
        let mut out = Vec::new();
        escape_into(s, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_escape_what_json_requires_and_keep_utf8() {
        assert_eq!(string("plain"), r#""plain""#);
        assert_eq!(string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(string("l1\nl2\r\t\u{1}"), r#""l1\nl2\r\t\u0001""#);
        assert_eq!(string("sk-ab…"), "\"sk-ab…\"");
    }

    #[test]
    fn floats_read_back_the_same_and_never_break_the_line() {
        let text = |v: f64| {
            let mut out = Vec::new();
            push_json_float(&mut out, v);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(text(1795629057.827), "1795629057.827");
        assert_eq!(text(0.1), "0.1");
        assert_eq!(text(2.0), "2.0");
        assert_eq!(text(1e-7).parse::<f64>().unwrap(), 1e-7);
        assert_eq!(text(f64::NAN), "null");
        assert_eq!(text(f64::INFINITY), "null");
    }
}
