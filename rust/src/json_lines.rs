//! JSON Lines with a fixed set of fields, each line written straight into one buffer: the access log.
//!
//! A line is a tuple of values in the fields' order; its object is formatted here without building
//! a dict or a struct in Python (the access log cost 3 µs a request in the server that way).

use std::io::Write;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyString, PyTuple};

/// `s` as a JSON string (quotes included) onto `out`: `"`, `\` and control characters escaped,
/// everything else (UTF-8 included) as is.
pub fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most texts (ids, names) need no escape: one pass to check, one copy.
    if bytes
        .iter()
        .all(|&b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f)
    {
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
            0..=0x1f | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

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
                push_json_string(&mut key, name);
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
        push_json_string(out, text.to_str()?);
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
        push_json_string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_escape_what_json_requires_and_keep_utf8() {
        assert_eq!(string("plain"), r#""plain""#);
        assert_eq!(string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            string("l1\nl2\r\t\u{1}\u{7f}"),
            r#""l1\nl2\r\t\u0001\u007f""#
        );
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
