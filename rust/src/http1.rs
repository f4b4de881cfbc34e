//! Incremental HTTP/1.1 response parser for the upstream client.
//!
//! The head is parsed with httparse (buffered only when it arrives in pieces); the body is then
//! framed by `Transfer-Encoding: chunked`, `Content-Length` or the end of the connection. The
//! body bytes of each `feed` are reported as ranges of that call's input, so the common case
//! costs one slice copy into the returned `bytes` (or none, when the whole input is body).

use std::mem::MaybeUninit;
use std::ops::Range;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Largest accepted response head (status line and headers).
pub const MAX_HEAD: usize = 64 * 1024;
/// Most headers accepted in one head.
pub const MAX_HEADERS: usize = 128;
/// Largest accepted trailer section of a chunked body.
pub const MAX_TRAILERS: usize = 64 * 1024;

/// Why a response is rejected. The message is stable and short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http1Error {
    StatusLine,
    Header,
    TooManyHeaders,
    HeadTooLarge,
    ContentLength,
    ChunkSize,
    ChunkExtension,
    ChunkEnd,
    TrailersTooLarge,
}

impl Http1Error {
    pub fn message(self) -> &'static str {
        match self {
            Http1Error::StatusLine => "invalid status line",
            Http1Error::Header => "invalid header",
            Http1Error::TooManyHeaders => "too many headers",
            Http1Error::HeadTooLarge => "response head too large",
            Http1Error::ContentLength => "invalid content-length",
            Http1Error::ChunkSize => "invalid chunk size",
            Http1Error::ChunkExtension => "invalid chunk extension",
            Http1Error::ChunkEnd => "invalid chunk terminator",
            Http1Error::TrailersTooLarge => "trailers too large",
        }
    }
}

impl From<Http1Error> for PyErr {
    fn from(err: Http1Error) -> PyErr {
        PyValueError::new_err(err.message())
    }
}

/// Position inside a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    SizeWs,
    Ext,
    SizeLf,
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    UntilEof,
    Chunked(Chunk),
    Done,
    Failed(Http1Error),
}

/// The parsed head of the final response.
#[derive(Debug, Default)]
struct Head {
    status: u16,
    /// Lower-cased names and raw values, back to back; `headers` indexes into it.
    blob: Vec<u8>,
    headers: Vec<(Range<usize>, Range<usize>)>,
    content_type: Range<usize>,
    keep_alive: bool,
}

/// The pure-Rust parser. See the Python docstring in `_core.pyi` for the contract.
#[derive(Debug)]
pub struct Http1Parser {
    state: State,
    head_buf: Vec<u8>,
    head: Head,
    head_complete: bool,
    truncated: bool,
    chunk_size: u64,
    chunk_digits: bool,
    trailer_bytes: usize,
    body: Vec<Range<usize>>,
}

impl Default for Http1Parser {
    fn default() -> Self {
        Self::new()
    }
}

fn parse_content_length(value: &[u8], seen: &mut Option<u64>) -> Result<(), Http1Error> {
    for part in value.split(|&b| b == b',') {
        let digits = part.trim_ascii();
        if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(Http1Error::ContentLength);
        }
        let n = digits
            .iter()
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
        match *seen {
            Some(prev) if prev != n => return Err(Http1Error::ContentLength),
            _ => *seen = Some(n),
        }
    }
    Ok(())
}

fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

impl Http1Parser {
    pub fn new() -> Self {
        Http1Parser {
            state: State::Head,
            head_buf: Vec::new(),
            head: Head::default(),
            head_complete: false,
            truncated: false,
            chunk_size: 0,
            chunk_digits: false,
            trailer_bytes: 0,
            body: Vec::new(),
        }
    }

    /// Forgets the current response (buffers keep their capacity).
    pub fn reset(&mut self) {
        self.state = State::Head;
        self.head_buf.clear();
        self.head.status = 0;
        self.head.blob.clear();
        self.head.headers.clear();
        self.head.content_type = 0..0;
        self.head.keep_alive = false;
        self.head_complete = false;
        self.truncated = false;
        self.chunk_size = 0;
        self.chunk_digits = false;
        self.trailer_bytes = 0;
        self.body.clear();
    }

    pub fn head_complete(&self) -> bool {
        self.head_complete
    }
    pub fn status(&self) -> u16 {
        self.head.status
    }
    pub fn complete(&self) -> bool {
        self.state == State::Done
    }
    pub fn truncated(&self) -> bool {
        self.truncated
    }
    pub fn keep_alive(&self) -> bool {
        self.head_complete && self.head.keep_alive
    }
    pub fn content_type(&self) -> &[u8] {
        &self.head.blob[self.head.content_type.clone()]
    }
    /// `(lower-cased name, value)` pairs in order of appearance.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let blob = &self.head.blob;
        self.head
            .headers
            .iter()
            .map(move |(n, v)| (&blob[n.clone()], &blob[v.clone()]))
    }

    /// Consumes `data`; returns the ranges of `data` that are decoded body bytes, in order.
    pub fn feed(&mut self, data: &[u8]) -> Result<&[Range<usize>], Http1Error> {
        self.body.clear();
        if let Err(err) = self.feed_inner(data) {
            self.state = State::Failed(err);
            self.body.clear();
            return Err(err);
        }
        Ok(&self.body)
    }

    fn feed_inner(&mut self, data: &[u8]) -> Result<(), Http1Error> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Head => match self.feed_head(data, pos)? {
                    Some(next) => pos = next,
                    None => return Ok(()),
                },
                State::Length(left) => {
                    let n = left.min((data.len() - pos) as u64) as usize;
                    if n > 0 {
                        self.body.push(pos..pos + n);
                    }
                    self.state = if left == n as u64 {
                        State::Done
                    } else {
                        State::Length(left - n as u64)
                    };
                    return Ok(());
                }
                State::UntilEof => {
                    if pos < data.len() {
                        self.body.push(pos..data.len());
                    }
                    return Ok(());
                }
                State::Chunked(_) => return self.feed_chunked(data, pos),
                State::Done => return Ok(()),
                State::Failed(err) => return Err(err),
            }
        }
    }

    /// Parses the head from `data[pos..]` (after any buffered part). Returns where the body
    /// starts in `data` once a final head is complete.
    fn feed_head(&mut self, data: &[u8], pos: usize) -> Result<Option<usize>, Http1Error> {
        if self.head_buf.is_empty() {
            let rest = &data[pos..];
            if rest.is_empty() {
                return Ok(None);
            }
            return match self.parse_head(rest)? {
                Some(len) => Ok(Some(pos + len)),
                None if rest.len() > MAX_HEAD => Err(Http1Error::HeadTooLarge),
                None => {
                    self.head_buf.extend_from_slice(rest);
                    Ok(None)
                }
            };
        }
        let old = self.head_buf.len();
        let take = (data.len() - pos).min(MAX_HEAD + 1 - old);
        let new = &data[pos..pos + take];
        self.head_buf.extend_from_slice(new);
        // The head ends with a newline: without one there is no point in parsing again.
        let parsed = if memchr::memchr(b'\n', new).is_some() {
            let buf = std::mem::take(&mut self.head_buf);
            let parsed = self.parse_head(&buf);
            self.head_buf = buf;
            parsed?
        } else {
            None
        };
        match parsed {
            Some(len) => {
                self.head_buf.clear();
                debug_assert!(len > old);
                Ok(Some(pos + len.saturating_sub(old)))
            }
            None if self.head_buf.len() > MAX_HEAD => Err(Http1Error::HeadTooLarge),
            None => Ok(None),
        }
    }

    /// Parses one head at the start of `buf`. Returns its length when complete; an interim
    /// (1xx) head is skipped and leaves the state at `Head`.
    fn parse_head(&mut self, buf: &[u8]) -> Result<Option<usize>, Http1Error> {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let config = httparse::ParserConfig::default();
        let len = match config.parse_response_with_uninit_headers(&mut response, buf, &mut slots) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::Status | httparse::Error::Version) => {
                return Err(Http1Error::StatusLine)
            }
            Err(httparse::Error::TooManyHeaders) => return Err(Http1Error::TooManyHeaders),
            Err(_) => return Err(Http1Error::Header),
        };
        if len > MAX_HEAD {
            return Err(Http1Error::HeadTooLarge);
        }
        let code = response.code.unwrap_or(0);
        if (100..200).contains(&code) && code != 101 {
            return Ok(Some(len));
        }
        let head = &mut self.head;
        head.status = code;
        head.blob.clear();
        head.headers.clear();
        head.content_type = 0..0;
        let mut content_length = None;
        let mut chunked = None;
        let (mut close, mut keep_alive) = (false, false);
        for header in response.headers.iter() {
            let name_start = head.blob.len();
            head.blob.extend_from_slice(header.name.as_bytes());
            head.blob[name_start..].make_ascii_lowercase();
            let value_start = head.blob.len();
            head.blob.extend_from_slice(header.value);
            let name = name_start..value_start;
            head.headers
                .push((name.clone(), value_start..head.blob.len()));
            match &head.blob[name] {
                b"content-length" => parse_content_length(header.value, &mut content_length)?,
                b"transfer-encoding" => {
                    for token in tokens(header.value) {
                        chunked = Some(token.eq_ignore_ascii_case(b"chunked"));
                    }
                }
                b"connection" => {
                    for token in tokens(header.value) {
                        close |= token.eq_ignore_ascii_case(b"close");
                        keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                    }
                }
                b"content-type" => {
                    let start = head.blob.len();
                    head.blob.extend_from_slice(header.value);
                    head.blob[start..].make_ascii_lowercase();
                    head.content_type = start..head.blob.len();
                }
                _ => {}
            }
        }
        self.state = if code == 204 || code == 304 {
            State::Done
        } else if let Some(chunked) = chunked {
            if chunked {
                State::Chunked(Chunk::Size)
            } else {
                State::UntilEof
            }
        } else {
            match content_length {
                Some(0) => State::Done,
                Some(n) => State::Length(n),
                None => State::UntilEof,
            }
        };
        let persistent = if response.version == Some(1) {
            !close
        } else {
            keep_alive && !close
        };
        // A message with both framings is a smuggling risk: never reuse that connection.
        let ambiguous = chunked.is_some() && content_length.is_some();
        head.keep_alive = persistent && !ambiguous && self.state != State::UntilEof;
        self.head_complete = true;
        Ok(Some(len))
    }

    fn feed_chunked(&mut self, data: &[u8], mut pos: usize) -> Result<(), Http1Error> {
        while pos < data.len() {
            let State::Chunked(chunk) = self.state else {
                return Ok(()); // done: bytes after the message are ignored
            };
            match chunk {
                Chunk::Data(left) => {
                    let n = left.min((data.len() - pos) as u64) as usize;
                    self.body.push(pos..pos + n);
                    pos += n;
                    let next = if left == n as u64 {
                        Chunk::DataCr
                    } else {
                        Chunk::Data(left - n as u64)
                    };
                    self.state = State::Chunked(next);
                }
                Chunk::TrailerLine => {
                    let rest = &data[pos..];
                    let (used, next) = match memchr::memchr(b'\n', rest) {
                        Some(i) => (i + 1, Chunk::TrailerStart),
                        None => (rest.len(), Chunk::TrailerLine),
                    };
                    self.trailer_bytes += used;
                    if self.trailer_bytes > MAX_TRAILERS {
                        return Err(Http1Error::TrailersTooLarge);
                    }
                    pos += used;
                    self.state = State::Chunked(next);
                }
                _ => {
                    self.state = self.chunk_byte(chunk, data[pos])?;
                    pos += 1;
                }
            }
        }
        Ok(())
    }

    /// One byte of a chunk-size line, a chunk terminator or the trailer section.
    fn chunk_byte(&mut self, chunk: Chunk, byte: u8) -> Result<State, Http1Error> {
        let next = match (chunk, byte) {
            (Chunk::Size, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                if self.chunk_size >> 59 != 0 {
                    return Err(Http1Error::ChunkSize);
                }
                let digit = (byte as char).to_digit(16).unwrap_or(0);
                self.chunk_size = self.chunk_size * 16 + u64::from(digit);
                self.chunk_digits = true;
                Chunk::Size
            }
            (Chunk::Size, _) if !self.chunk_digits => return Err(Http1Error::ChunkSize),
            (Chunk::Size | Chunk::SizeWs, b' ' | b'\t') => Chunk::SizeWs,
            (Chunk::Size | Chunk::SizeWs, b';') => Chunk::Ext,
            (Chunk::Size | Chunk::SizeWs | Chunk::Ext, b'\r') => Chunk::SizeLf,
            (Chunk::Size | Chunk::SizeWs | Chunk::Ext | Chunk::SizeLf, b'\n') => {
                let size = std::mem::take(&mut self.chunk_size);
                self.chunk_digits = false;
                if size == 0 {
                    Chunk::TrailerStart
                } else {
                    Chunk::Data(size)
                }
            }
            (Chunk::Size | Chunk::SizeWs | Chunk::SizeLf, _) => return Err(Http1Error::ChunkSize),
            (Chunk::Ext, b'\t' | 0x20..=0x7e | 0x80..=0xff) => Chunk::Ext,
            (Chunk::Ext, _) => return Err(Http1Error::ChunkExtension),
            (Chunk::DataCr, b'\r') => Chunk::DataLf,
            (Chunk::DataCr | Chunk::DataLf, b'\n') => Chunk::Size,
            (Chunk::TrailerStart, b'\r') => Chunk::TrailerLf,
            (Chunk::TrailerStart | Chunk::TrailerLf, b'\n') => return Ok(State::Done),
            (Chunk::TrailerStart, _) => {
                self.trailer_bytes += 1;
                Chunk::TrailerLine
            }
            _ => return Err(Http1Error::ChunkEnd),
        };
        Ok(State::Chunked(next))
    }

    /// The connection closed.
    pub fn feed_eof(&mut self) {
        match self.state {
            State::UntilEof => self.state = State::Done,
            State::Done | State::Failed(_) => {}
            _ => self.truncated = true,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Python layer

/// Incremental HTTP/1.1 response parser (see `_core.pyi`).
#[pyclass(name = "Http1Parser", module = "gatecore._core")]
pub struct PyHttp1Parser {
    inner: Http1Parser,
}

#[pymethods]
impl PyHttp1Parser {
    #[new]
    fn py_new() -> Self {
        PyHttp1Parser {
            inner: Http1Parser::new(),
        }
    }

    fn feed<'py>(&mut self, data: &Bound<'py, PyBytes>) -> PyResult<Bound<'py, PyBytes>> {
        let py = data.py();
        let bytes = data.as_bytes();
        let ranges = self.inner.feed(bytes)?;
        Ok(match ranges {
            [] => PyBytes::new(py, b""),
            [only] if only.len() == bytes.len() => data.clone(),
            [only] => PyBytes::new(py, &bytes[only.clone()]),
            many => {
                let len = many.iter().map(Range::len).sum();
                PyBytes::new_with(py, len, |out| {
                    let mut w = 0;
                    for r in many {
                        out[w..w + r.len()].copy_from_slice(&bytes[r.clone()]);
                        w += r.len();
                    }
                    Ok(())
                })?
            }
        })
    }

    fn feed_eof(&mut self) {
        self.inner.feed_eof();
    }

    fn reset(&mut self) {
        self.inner.reset();
    }

    #[getter]
    fn head_complete(&self) -> bool {
        self.inner.head_complete()
    }

    #[getter]
    fn status(&self) -> u16 {
        self.inner.status()
    }

    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> Vec<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        self.inner
            .headers()
            .map(|(n, v)| (PyBytes::new(py, n), PyBytes::new(py, v)))
            .collect()
    }

    #[getter]
    fn content_type<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.content_type())
    }

    #[getter]
    fn complete(&self) -> bool {
        self.inner.complete()
    }

    #[getter]
    fn keep_alive(&self) -> bool {
        self.inner.keep_alive()
    }

    #[getter]
    fn truncated(&self) -> bool {
        self.inner.truncated()
    }
}

#[cfg(test)]
#[path = "http1_tests.rs"]
mod tests;
