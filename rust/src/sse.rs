//! Relays an OpenAI-style Server-Sent-Events body to the client, event by event.
//!
//! Each `feed` returns the bytes of the events it completed. An event is passed through byte for
//! byte, except that the top-level `"model"` string of its JSON data can be rewritten, and a
//! usage-only chunk the gateway asked for itself can be dropped. On the way, the JSON of every
//! data event is scanned once (no tree) for usage, errors, finish reasons and the output text.

use std::ops::Range;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::chunk_scan::{inspect, TextSpan, Usage};
use crate::json_scan::{escape_into, unescape_into};
use crate::tokens::{Encoding, DETACH_OVER};

/// What one `feed` produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emitted {
    /// Nothing completed.
    Empty,
    /// Exactly this range of the input, unchanged.
    Input(Range<usize>),
    /// The bytes in [`SseRelay::output`].
    Buffer,
}

/// The pure-Rust relay. See the Python docstring in `_core.pyi` for the contract.
#[derive(Debug)]
pub struct SseRelay {
    model_literal: Option<Vec<u8>>,
    strip_usage_only: bool,
    count_output: bool,
    encoding: Encoding,
    // Framing state: the partial event, and where the line scan stands.
    pending: Vec<u8>,
    at_line_start: bool,
    prev_cr: bool,
    skip_lf: bool,
    // Output of the current feed, and its lazy-copy state.
    out: Vec<u8>,
    lazy: Option<Range<usize>>,
    buffered: bool,
    // Scratch reused across events.
    joined: Vec<u8>,
    data_map: Vec<(usize, usize)>,
    model_spans: Vec<Range<usize>>,
    text_spans: Vec<TextSpan>,
    // Results.
    pub done: bool,
    pub events: u64,
    pub usage: Option<Usage>,
    pub error: Option<Vec<u8>>,
    pub malformed_events: u64,
    pub finish_reason: Option<String>,
    texts: Vec<Vec<u8>>,
    token_cache: Option<(usize, usize)>,
}

/// Maps an offset in the data (joined when multi-line) to an offset in the event. A JSON
/// string cannot span lines, so both ends of a literal map through the same line.
fn event_offset(data_map: &[(usize, usize)], at: usize, first_start: usize, lines: usize) -> usize {
    if lines == 1 {
        return first_start + at;
    }
    let k = data_map.partition_point(|&(json_start, _)| json_start <= at) - 1;
    let (json_start, event_start) = data_map[k];
    event_start + (at - json_start)
}

/// What to do with a completed event.
enum Action {
    Drop,
    Pass,
    /// Replace `model_spans` (now offsets into the event) with the model literal.
    Rewrite,
}

impl SseRelay {
    pub fn new(
        model: Option<&str>,
        strip_usage_only: bool,
        count_output: bool,
        encoding: Encoding,
    ) -> Self {
        let model_literal = model.map(|m| {
            let mut literal = Vec::with_capacity(m.len() + 2);
            escape_into(m, &mut literal);
            literal
        });
        SseRelay {
            model_literal,
            strip_usage_only,
            count_output,
            encoding,
            pending: Vec::new(),
            at_line_start: true,
            prev_cr: false,
            skip_lf: false,
            out: Vec::new(),
            lazy: None,
            buffered: false,
            joined: Vec::new(),
            data_map: Vec::new(),
            model_spans: Vec::new(),
            text_spans: Vec::new(),
            done: false,
            events: 0,
            usage: None,
            error: None,
            malformed_events: 0,
            finish_reason: None,
            texts: Vec::new(),
            token_cache: None,
        }
    }

    /// The buffer behind [`Emitted::Buffer`].
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Consumes body bytes; reports the bytes of the events completed by this call.
    pub fn feed(&mut self, data: &[u8]) -> Emitted {
        self.out.clear();
        self.lazy = None;
        self.buffered = false;
        let mut pos = 0;
        if self.skip_lf && !data.is_empty() {
            // The last event ended with a lone CR at the end of a feed: this LF completes it.
            self.skip_lf = false;
            if data[0] == b'\n' {
                self.emit_input(data, 0..1);
                pos = 1;
            }
        }
        while pos < data.len() {
            let Some(end) = self.event_end(data, pos) else {
                self.pending.extend_from_slice(&data[pos..]);
                break;
            };
            if self.pending.is_empty() {
                match self.relay_event(&data[pos..end]) {
                    Action::Drop => {}
                    Action::Pass => self.emit_input(data, pos..end),
                    Action::Rewrite => self.emit_rewrite(data, pos..end),
                }
            } else {
                self.pending.extend_from_slice(&data[pos..end]);
                let event = std::mem::take(&mut self.pending);
                match self.relay_event(&event) {
                    Action::Drop => {}
                    Action::Pass => {
                        self.materialize(data);
                        self.out.extend_from_slice(&event);
                    }
                    Action::Rewrite => {
                        self.materialize(data);
                        self.rewrite_into_out(&event);
                    }
                }
                self.pending = event;
                self.pending.clear();
            }
            pos = end;
        }
        if self.buffered {
            Emitted::Buffer
        } else {
            self.lazy.take().map_or(Emitted::Empty, Emitted::Input)
        }
    }

    /// End of the upstream body: the held partial event (an upstream may omit the last blank
    /// line). It is handled like a complete event: inspected, model rewritten, or dropped when
    /// it is a usage-only chunk to strip; otherwise returned as it is.
    pub fn finish(&mut self) -> Vec<u8> {
        let held = std::mem::take(&mut self.pending);
        self.at_line_start = true;
        self.prev_cr = false;
        self.skip_lf = false;
        if held.is_empty() {
            return held;
        }
        match self.relay_event(&held) {
            Action::Drop => Vec::new(),
            Action::Pass => held,
            Action::Rewrite => {
                self.out.clear();
                self.rewrite_into_out(&held);
                self.out.clone()
            }
        }
    }

    /// Finds the end of the event that continues at `data[from..]`, carrying the line state
    /// across calls. Lines end in CRLF, LF or CR; an empty line ends the event.
    fn event_end(&mut self, data: &[u8], from: usize) -> Option<usize> {
        let mut i = from;
        loop {
            let Some(offset) = memchr::memchr2(b'\n', b'\r', &data[i..]) else {
                if i < data.len() {
                    self.at_line_start = false;
                    self.prev_cr = false;
                }
                return None;
            };
            let t = i + offset;
            if offset > 0 {
                self.at_line_start = false;
                self.prev_cr = false;
            }
            let byte = data[t];
            if byte == b'\n' && self.prev_cr {
                self.prev_cr = false;
                i = t + 1;
                continue;
            }
            if self.at_line_start {
                let mut end = t + 1;
                if byte == b'\r' {
                    match data.get(end) {
                        Some(b'\n') => end += 1,
                        Some(_) => {}
                        None => self.skip_lf = true,
                    }
                }
                self.prev_cr = false;
                return Some(end);
            }
            self.at_line_start = true;
            self.prev_cr = byte == b'\r';
            i = t + 1;
        }
    }

    fn emit_input(&mut self, data: &[u8], range: Range<usize>) {
        if self.buffered {
            self.out.extend_from_slice(&data[range]);
            return;
        }
        match &mut self.lazy {
            None => self.lazy = Some(range),
            Some(lazy) if lazy.end == range.start => lazy.end = range.end,
            Some(_) => {
                self.materialize(data);
                self.out.extend_from_slice(&data[range]);
            }
        }
    }

    /// Switches from "output is a slice of the input" to building `out`.
    fn materialize(&mut self, data: &[u8]) {
        if !self.buffered {
            if let Some(lazy) = self.lazy.take() {
                self.out.extend_from_slice(&data[lazy]);
            }
            self.buffered = true;
        }
    }

    fn emit_rewrite(&mut self, data: &[u8], range: Range<usize>) {
        self.materialize(data);
        self.rewrite_into_out(&data[range]);
    }

    fn rewrite_into_out(&mut self, event: &[u8]) {
        let literal = self.model_literal.as_deref().unwrap_or_default();
        let mut copied = 0;
        for span in &self.model_spans {
            self.out.extend_from_slice(&event[copied..span.start]);
            self.out.extend_from_slice(literal);
            copied = span.end;
        }
        self.out.extend_from_slice(&event[copied..]);
    }

    /// Parses the fields of one complete event, updates the results and decides its fate.
    fn relay_event(&mut self, event: &[u8]) -> Action {
        let mut lines = 0;
        let mut first = 0..0;
        let mut i = 0;
        while i < event.len() {
            let t = memchr::memchr2(b'\n', b'\r', &event[i..]).map_or(event.len(), |o| i + o);
            if t == i {
                break; // the blank line that ends the event
            }
            let next = if event[t..].starts_with(b"\r\n") {
                t + 2
            } else {
                t + 1
            };
            if event[i..t].starts_with(b"data")
                && matches!(event.get(i + 4), Some(b':') | Some(b'\r' | b'\n') | None)
            {
                let mut start = (i + 5).min(t);
                if event.get(start) == Some(&b' ') && start < t {
                    start += 1;
                }
                self.add_data_line(event, &mut lines, &mut first, start..t);
            }
            i = next;
        }
        if lines == 0 {
            return Action::Pass;
        }
        let joined = std::mem::take(&mut self.joined);
        let json = if lines == 1 {
            &event[first.clone()]
        } else {
            &joined[..]
        };
        let action = self.relay_data(json, event, first.start, lines);
        self.joined = joined;
        action
    }

    fn add_data_line(
        &mut self,
        event: &[u8],
        lines: &mut usize,
        first: &mut Range<usize>,
        value: Range<usize>,
    ) {
        *lines += 1;
        match *lines {
            1 => *first = value,
            n => {
                if n == 2 {
                    self.joined.clear();
                    self.data_map.clear();
                    self.joined.extend_from_slice(&event[first.clone()]);
                    self.data_map.push((0, first.start));
                }
                self.joined.push(b'\n');
                self.data_map.push((self.joined.len(), value.start));
                self.joined.extend_from_slice(&event[value]);
            }
        }
    }

    fn relay_data(
        &mut self,
        json: &[u8],
        event: &[u8],
        first_start: usize,
        lines: usize,
    ) -> Action {
        if json.trim_ascii() == b"[DONE]" {
            self.done = true;
            return Action::Pass;
        }
        self.model_spans.clear();
        self.text_spans.clear();
        let texts = if self.count_output {
            Some(&mut self.text_spans)
        } else {
            None
        };
        let Ok(found) = inspect(json, &mut self.model_spans, texts) else {
            self.malformed_events += 1;
            self.events += 1;
            return Action::Pass;
        };
        if let Some(usage) = found.usage {
            self.usage = Some(usage);
        }
        if let Some(error) = found.error {
            self.error = Some(json[error].to_vec());
        }
        if let Some(span) = found.finish_reason {
            let mut decoded = Vec::new();
            unescape_into(&json[span.inner()], &mut decoded);
            self.finish_reason = Some(String::from_utf8_lossy(&decoded).into_owned());
        }
        for span in &self.text_spans {
            if self.texts.len() <= span.bucket {
                self.texts.resize_with(span.bucket + 1, Vec::new);
            }
            let text = &mut self.texts[span.bucket];
            if span.escaped {
                unescape_into(&json[span.inner.clone()], text);
            } else {
                text.extend_from_slice(&json[span.inner.clone()]);
            }
        }
        if self.strip_usage_only && found.choices_empty && found.usage.is_some() {
            return Action::Drop;
        }
        self.events += 1;
        let Some(literal) = self.model_literal.as_deref() else {
            return Action::Pass;
        };
        if self.model_spans.iter().all(|s| &json[s.clone()] == literal) {
            return Action::Pass;
        }
        for span in self.model_spans.iter_mut() {
            let start = event_offset(&self.data_map, span.start, first_start, lines);
            let last = event_offset(&self.data_map, span.end - 1, first_start, lines);
            debug_assert!(last < event.len());
            *span = start..last + 1;
        }
        Action::Rewrite
    }

    /// Bytes of output text collected so far.
    pub fn output_text_len(&self) -> usize {
        self.texts.iter().map(Vec::len).sum()
    }

    /// Tokens in the collected output text (each choice and kind counted separately).
    pub fn output_tokens(&mut self) -> usize {
        let len = self.output_text_len();
        if let Some((cached_len, tokens)) = self.token_cache {
            if cached_len == len {
                return tokens;
            }
        }
        let tokens = self
            .texts
            .iter()
            .map(|t| self.encoding.count(&String::from_utf8_lossy(t)))
            .sum();
        self.token_cache = Some((len, tokens));
        tokens
    }
}

// ---------------------------------------------------------------------------------------------
// Python layer

/// Relays an upstream SSE body to the client event by event (see `_core.pyi`).
#[pyclass(name = "SseRelay", module = "gatecore._core")]
pub struct PySseRelay {
    inner: SseRelay,
}

#[pymethods]
impl PySseRelay {
    #[new]
    #[pyo3(signature = (model = None, strip_usage_only = false, count_output = true, encoding = "o200k_base"))]
    fn py_new(
        model: Option<&str>,
        strip_usage_only: bool,
        count_output: bool,
        encoding: &str,
    ) -> PyResult<Self> {
        let encoding = Encoding::from_name(encoding)?;
        Ok(PySseRelay {
            inner: SseRelay::new(model, strip_usage_only, count_output, encoding),
        })
    }

    fn feed<'py>(&mut self, data: &Bound<'py, PyBytes>) -> Bound<'py, PyBytes> {
        let py = data.py();
        let bytes = data.as_bytes();
        match self.inner.feed(bytes) {
            Emitted::Empty => PyBytes::new(py, b""),
            Emitted::Input(r) if r.len() == bytes.len() => data.clone(),
            Emitted::Input(r) => PyBytes::new(py, &bytes[r]),
            Emitted::Buffer => PyBytes::new(py, self.inner.output()),
        }
    }

    fn finish<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.finish())
    }

    fn output_tokens(&mut self, py: Python<'_>) -> usize {
        let inner = &mut self.inner;
        if inner.output_text_len() > DETACH_OVER {
            py.detach(|| inner.output_tokens())
        } else {
            inner.output_tokens()
        }
    }

    #[getter]
    fn done(&self) -> bool {
        self.inner.done
    }

    #[getter]
    fn events(&self) -> u64 {
        self.inner.events
    }

    #[getter]
    fn usage(&self) -> Option<(u64, u64, u64, u64)> {
        self.inner
            .usage
            .map(|u| (u.prompt, u.completion, u.cached, u.reasoning))
    }

    #[getter]
    fn error<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.error.as_deref().map(|e| PyBytes::new(py, e))
    }

    /// Bytes of a partial event held until its end arrives (the caller caps this).
    #[getter]
    fn held_bytes(&self) -> usize {
        self.inner.pending.len()
    }

    #[getter]
    fn malformed_events(&self) -> u64 {
        self.inner.malformed_events
    }

    #[getter]
    fn first_choice_finish_reason(&self) -> Option<&str> {
        self.inner.finish_reason.as_deref()
    }
}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;
