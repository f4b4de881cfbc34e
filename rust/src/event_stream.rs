//! Decodes the AWS event-stream binary framing (`application/vnd.amazon.eventstream`), as Bedrock's
//! ConverseStream sends it.
//!
//! A message is: a 12-byte prelude (total length, headers length, both big-endian u32, then the
//! CRC32 of those 8 bytes), the headers, the payload, and the CRC32 of everything before it. Each
//! header is a 1-byte name length, the name, a 1-byte value type and the value. The decoder is
//! incremental: bytes may arrive split anywhere, and every complete message is returned as soon as
//! its last byte is fed. Both CRCs are checked; a bad one fails the stream (nothing after it can be
//! trusted to be aligned on a message boundary).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

const PRELUDE_LEN: usize = 12;
const CRC_LEN: usize = 4;
/// The smallest message: a prelude and a message CRC, no headers, no payload.
const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + CRC_LEN;
/// The service limits: 16 MiB per message, 128 KiB of headers.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;
pub const MAX_HEADERS_LEN: usize = 128 * 1024;

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), the checksum event-stream uses.
const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// The CRC-32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

/// Why a stream cannot be decoded. The messages are stable: Python sees them in `ValueError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStreamError {
    PreludeCrc,
    MessageCrc,
    InvalidLength,
    MessageTooLarge,
    InvalidHeader,
    Truncated,
}

impl EventStreamError {
    pub fn message(self) -> &'static str {
        match self {
            EventStreamError::PreludeCrc => "event-stream prelude CRC mismatch",
            EventStreamError::MessageCrc => "event-stream message CRC mismatch",
            EventStreamError::InvalidLength => "event-stream invalid message length",
            EventStreamError::MessageTooLarge => "event-stream message too large",
            EventStreamError::InvalidHeader => "event-stream invalid header",
            EventStreamError::Truncated => "event-stream truncated message",
        }
    }
}

impl From<EventStreamError> for PyErr {
    fn from(err: EventStreamError) -> PyErr {
        PyValueError::new_err(err.message())
    }
}

/// One decoded message: what it is and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The `:message-type` header: `event`, `exception` or `error` (empty when absent).
    pub message_type: String,
    /// `:event-type` for events, `:exception-type` for exceptions, `:error-code` for errors.
    pub kind: String,
    /// The payload; for an `error` message without one, its `:error-message` header.
    pub payload: Vec<u8>,
}

/// The pure-Rust decoder. See the Python docstring in `_core.pyi` for the contract.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    buf: Vec<u8>,
    /// Whether the prelude of the message at the start of `buf` was already checked.
    prelude_checked: bool,
    failed: Option<EventStreamError>,
}

impl EventStreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Consume the next bytes; return every message they complete, in order.
    pub fn feed(&mut self, data: &[u8]) -> Result<Vec<Message>, EventStreamError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        self.buf.extend_from_slice(data);
        let mut messages = Vec::new();
        let mut start = 0;
        let result = loop {
            match self.next_message(start) {
                Ok(Some((message, len))) => {
                    messages.push(message);
                    start += len;
                    self.prelude_checked = false;
                }
                Ok(None) => break Ok(()),
                Err(err) => break Err(err),
            }
        };
        self.buf.drain(..start);
        match result {
            Ok(()) => Ok(messages),
            Err(err) => {
                self.failed = Some(err);
                self.buf.clear();
                Err(err)
            }
        }
    }

    /// End of the stream: an error if part of a message is still held.
    pub fn finish(&self) -> Result<(), EventStreamError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(EventStreamError::Truncated)
        }
    }

    /// Bytes of an incomplete message held until the rest arrives.
    pub fn held_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The message starting at `buf[start..]` and its length, or None while it is incomplete.
    fn next_message(&mut self, start: usize) -> Result<Option<(Message, usize)>, EventStreamError> {
        let buf = &self.buf[start..];
        if buf.len() < PRELUDE_LEN {
            return Ok(None);
        }
        let total = be_u32(&buf[0..4]) as usize;
        let headers_len = be_u32(&buf[4..8]) as usize;
        if !self.prelude_checked {
            // Checked before waiting for the body, so a corrupt length fails now instead of
            // making the decoder wait for bytes that never come.
            if crc32(&buf[0..8]) != be_u32(&buf[8..12]) {
                return Err(EventStreamError::PreludeCrc);
            }
            if total < MIN_MESSAGE_LEN || headers_len > total - MIN_MESSAGE_LEN {
                return Err(EventStreamError::InvalidLength);
            }
            if total > MAX_MESSAGE_LEN || headers_len > MAX_HEADERS_LEN {
                return Err(EventStreamError::MessageTooLarge);
            }
            self.prelude_checked = true;
        }
        if buf.len() < total {
            return Ok(None);
        }
        let body_end = total - CRC_LEN;
        if crc32(&buf[..body_end]) != be_u32(&buf[body_end..total]) {
            return Err(EventStreamError::MessageCrc);
        }
        let headers_end = PRELUDE_LEN + headers_len;
        let mut message = parse_headers(&buf[PRELUDE_LEN..headers_end])?;
        let payload = &buf[headers_end..body_end];
        if !payload.is_empty() || message.message_type != "error" {
            message.payload = payload.to_vec();
        }
        Ok(Some((message, total)))
    }
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_u16(b: &[u8]) -> usize {
    u16::from_be_bytes([b[0], b[1]]) as usize
}

/// Walks every header (all value types, so any header can be skipped) and keeps the ones that say
/// what the message is.
fn parse_headers(mut h: &[u8]) -> Result<Message, EventStreamError> {
    let mut message = Message {
        message_type: String::new(),
        kind: String::new(),
        payload: Vec::new(),
    };
    let mut error_message = None;
    while !h.is_empty() {
        let name_len = h[0] as usize;
        if name_len == 0 || h.len() < 1 + name_len + 1 {
            return Err(EventStreamError::InvalidHeader);
        }
        let name = &h[1..1 + name_len];
        let value_type = h[1 + name_len];
        h = &h[2 + name_len..];
        let value_len = match value_type {
            0 | 1 => 0, // bool true / false: no value bytes
            2 => 1,     // byte
            3 => 2,     // short
            4 => 4,     // integer
            5 | 8 => 8, // long, timestamp
            9 => 16,    // uuid
            6 | 7 => {
                // byte array, string: a u16 length first
                if h.len() < 2 {
                    return Err(EventStreamError::InvalidHeader);
                }
                let len = be_u16(h);
                h = &h[2..];
                len
            }
            _ => return Err(EventStreamError::InvalidHeader),
        };
        if h.len() < value_len {
            return Err(EventStreamError::InvalidHeader);
        }
        let value = &h[..value_len];
        h = &h[value_len..];
        if value_type != 7 {
            continue;
        }
        let text = || {
            std::str::from_utf8(value)
                .map(str::to_owned)
                .map_err(|_| EventStreamError::InvalidHeader)
        };
        match name {
            b":message-type" => message.message_type = text()?,
            b":event-type" | b":exception-type" | b":error-code" => message.kind = text()?,
            b":error-message" => error_message = Some(value.to_vec()),
            _ => {}
        }
    }
    if message.message_type == "error" {
        message.payload = error_message.unwrap_or_default();
    }
    Ok(message)
}

/// Encodes one message: for tests (the mock upstreams build their frames in Python).
pub fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut hbytes = Vec::new();
    for (name, value) in headers {
        hbytes.push(name.len() as u8);
        hbytes.extend_from_slice(name.as_bytes());
        hbytes.push(7);
        hbytes.extend_from_slice(&(value.len() as u16).to_be_bytes());
        hbytes.extend_from_slice(value.as_bytes());
    }
    let total = PRELUDE_LEN + hbytes.len() + payload.len() + CRC_LEN;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(hbytes.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&hbytes);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

// ---------------------------------------------------------------------------------------------
// Python layer

/// Incremental AWS event-stream decoder (see `_core.pyi`).
#[pyclass(name = "EventStreamDecoder", module = "gatecore._core")]
pub struct PyEventStreamDecoder {
    inner: EventStreamDecoder,
}

#[pymethods]
impl PyEventStreamDecoder {
    #[new]
    fn py_new() -> Self {
        PyEventStreamDecoder {
            inner: EventStreamDecoder::new(),
        }
    }

    fn feed<'py>(
        &mut self,
        data: &Bound<'py, PyBytes>,
    ) -> PyResult<Vec<(String, String, Bound<'py, PyBytes>)>> {
        let py = data.py();
        let messages = self.inner.feed(data.as_bytes())?;
        Ok(messages
            .into_iter()
            .map(|m| (m.message_type, m.kind, PyBytes::new(py, &m.payload)))
            .collect())
    }

    fn finish(&self) -> PyResult<()> {
        Ok(self.inner.finish()?)
    }

    #[getter]
    fn held_bytes(&self) -> usize {
        self.inner.held_bytes()
    }
}

#[cfg(test)]
#[path = "event_stream_tests.rs"]
mod tests;
