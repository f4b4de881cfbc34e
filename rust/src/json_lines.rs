//! JSON Lines with a fixed set of fields, each line written straight into one buffer: the access log.
//!
//! A line is a tuple of values in the fields' order; its object is formatted here without building
//! a dict or a struct in Python (the access log cost 3 µs a request in the server that way). A field
//! may take a duration or a time as integer nanoseconds and show it in ms or s to three decimals:
//! integer arithmetic, where a Python float cost a division and a shortest-float formatting.

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

/// `value` in decimal: digits from a stack buffer, about a third of `write!`'s cost (the access log
/// writes a dozen integers a line).
pub fn push_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// `value` in decimal, with its sign.
pub fn push_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    push_u64(out, value.unsigned_abs());
}

/// How a field's integer value is shown: as it is, or nanoseconds in milliseconds or seconds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Unit {
    Plain,
    NanosAsMillis,
    NanosAsSeconds,
}

impl Unit {
    fn parse(name: &str) -> Option<Unit> {
        match name {
            "" => Some(Unit::Plain),
            "ms" => Some(Unit::NanosAsMillis),
            "s" => Some(Unit::NanosAsSeconds),
            _ => None,
        }
    }
}

/// `ns` nanoseconds in ms (to the µs, half up) or s (to the ms, truncated: a wall-clock stamp), as a
/// JSON number with three decimals.
pub fn push_nanos(out: &mut Vec<u8>, ns: i64, unit: Unit) {
    let magnitude = ns.unsigned_abs();
    let thousandths = match unit {
        Unit::Plain => return push_i64(out, ns),
        Unit::NanosAsMillis => (magnitude + 500) / 1000,
        Unit::NanosAsSeconds => magnitude / 1_000_000,
    };
    if ns < 0 && thousandths > 0 {
        out.push(b'-');
    }
    let fraction = thousandths % 1000;
    push_u64(out, thousandths / 1000);
    out.extend_from_slice(&[
        b'.',
        b'0' + (fraction / 100) as u8,
        b'0' + (fraction / 10 % 10) as u8,
        b'0' + (fraction % 10) as u8,
    ]);
}

#[pyclass(name = "JsonLines", module = "gatecore._core")]
pub struct PyJsonLines {
    /// Per field: `{"name":` for the first, `,"name":` after.
    keys: Vec<Vec<u8>>,
    units: Vec<Unit>,
    buffer: Vec<u8>,
}

#[pymethods]
impl PyJsonLines {
    #[new]
    #[pyo3(signature = (fields, units = None))]
    fn new(fields: Vec<String>, units: Option<Vec<String>>) -> PyResult<Self> {
        let units = match units {
            None => vec![Unit::Plain; fields.len()],
            Some(names) if names.len() == fields.len() => names
                .iter()
                .map(|name| {
                    Unit::parse(name).ok_or_else(|| {
                        PyValueError::new_err(format!(
                            "unknown unit {name:?}: \"\", \"ms\" or \"s\""
                        ))
                    })
                })
                .collect::<PyResult<Vec<Unit>>>()?,
            Some(names) => {
                return Err(PyValueError::new_err(format!(
                    "{} units for {} fields",
                    names.len(),
                    fields.len()
                )))
            }
        };
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
        Ok(PyJsonLines {
            keys,
            units,
            buffer: Vec::with_capacity(1 << 16),
        })
    }

    /// One line: `values` in the fields' order (None, bool, int, float or str). Returns the bytes
    /// now waiting.
    fn add(&mut self, values: &Bound<'_, PyTuple>) -> PyResult<usize> {
        if values.len() != self.keys.len() {
            return Err(PyValueError::new_err(format!(
                "{} values for {} fields",
                values.len(),
                self.keys.len()
            )));
        }
        let mark = self.buffer.len();
        for ((key, &unit), value) in self
            .keys
            .iter()
            .zip(&self.units)
            .zip(values.iter_borrowed())
        {
            self.buffer.extend_from_slice(key);
            if let Err(error) = push_value(&mut self.buffer, &value, unit) {
                self.buffer.truncate(mark); // no half line
                return Err(error);
            }
        }
        self.buffer.extend_from_slice(b"}\n");
        Ok(self.buffer.len())
    }

    /// A line formatted elsewhere (it must be one JSON object without a newline); `\n` is added.
    /// Returns the bytes now waiting.
    fn add_raw(&mut self, line: &[u8]) -> usize {
        self.buffer.extend_from_slice(line);
        self.buffer.push(b'\n');
        self.buffer.len()
    }

    /// Write every line added so far to the file descriptor `fd` and forget them, without a copy
    /// into a Python bytes object. Returns the bytes written; a descriptor that takes no more now
    /// (non-blocking, full) keeps the rest for the next call. Any other error drops the lines (the
    /// log is best effort) and is raised as OSError.
    fn write_to(&mut self, fd: i32) -> PyResult<usize> {
        let mut written = 0;
        while written < self.buffer.len() {
            let rest = &self.buffer[written..];
            // SAFETY: `rest` is a live slice of the buffer; write reads at most its length.
            let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
            if n >= 0 {
                written += n as usize;
                continue;
            }
            let error = std::io::Error::last_os_error();
            match error.kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock => break,
                _ => {
                    self.buffer.clear();
                    return Err(error.into());
                }
            }
        }
        self.buffer.drain(..written);
        Ok(written)
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

fn push_value(out: &mut Vec<u8>, value: &Borrowed<'_, '_, PyAny>, unit: Unit) -> PyResult<()> {
    if value.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(text) = value.cast::<PyString>() {
        escape_into(text.to_str()?, out);
    } else if let Ok(flag) = value.cast::<PyBool>() {
        out.extend_from_slice(if flag.is_true() { b"true" } else { b"false" });
    } else if value.is_instance_of::<PyInt>() && unit != Unit::Plain {
        push_nanos(out, value.extract::<i64>()?, unit);
    } else if value.is_instance_of::<PyInt>() {
        match value.extract::<i64>() {
            Ok(number) => push_i64(out, number),
            Err(_) => {
                let _ = write!(out, "{}", value.extract::<i128>()?); // writing to a Vec cannot fail
            }
        }
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
    fn integers_print_as_rust_does() {
        for value in [0, 7, -7, 10, 99, 100, 1_000_000, i64::MAX, i64::MIN, -1] {
            let mut out = Vec::new();
            push_i64(&mut out, value);
            assert_eq!(String::from_utf8(out).unwrap(), value.to_string());
        }
        let mut out = Vec::new();
        push_u64(&mut out, u64::MAX);
        assert_eq!(String::from_utf8(out).unwrap(), u64::MAX.to_string());
    }

    #[test]
    fn nanos_show_as_milliseconds_to_the_microsecond_and_seconds_to_the_millisecond() {
        let text = |ns: i64, unit: Unit| {
            let mut out = Vec::new();
            push_nanos(&mut out, ns, unit);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(text(1_320_000, Unit::NanosAsMillis), "1.320");
        assert_eq!(text(1_319_500, Unit::NanosAsMillis), "1.320"); // half up
        assert_eq!(text(1_319_499, Unit::NanosAsMillis), "1.319");
        assert_eq!(text(7, Unit::NanosAsMillis), "0.000");
        assert_eq!(text(12_345_678_901, Unit::NanosAsMillis), "12345.679");
        assert_eq!(text(-500_000, Unit::NanosAsMillis), "-0.500");
        assert_eq!(text(-1_500_000, Unit::NanosAsMillis), "-1.500");
        assert_eq!(
            text(1_796_528_032_257_999_999, Unit::NanosAsSeconds),
            "1796528032.257"
        );
        assert_eq!(text(5_000_000, Unit::NanosAsSeconds), "0.005");
        assert_eq!(text(-5_000_000, Unit::NanosAsSeconds), "-0.005");
        assert_eq!(text(-400, Unit::NanosAsMillis), "0.000");
        assert_eq!(text(42, Unit::Plain), "42");
        for ns in [0, 1, 999, 1_000_499, 3_600_000_000_000] {
            let shown: f64 = text(ns, Unit::NanosAsMillis).parse().unwrap();
            assert!((shown - ns as f64 / 1e6).abs() <= 0.0005, "{ns}");
        }
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
