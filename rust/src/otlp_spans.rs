//! Finished spans encoded straight into an OTLP/HTTP export body (`ExportTraceServiceRequest`,
//! binary protobuf): the tracer's whole per-span cost.
//!
//! The Python OpenTelemetry SDK made a span in ~20 µs and its exporter encoded it in ~30 µs more, on
//! the worker's GIL: every traced request cost 0.3-0.5 ms, several times gatecore's own work. Here a
//! span is encoded once, when it ends, from plain values, onto the batch it will be exported in; the
//! queue is bounded (past `max_spans` new spans are dropped and counted) and `take` wraps the oldest
//! batch in the request's resource and scope.
//!
//! Messages and field numbers: opentelemetry-proto's `trace/v1/trace.proto`,
//! `common/v1/common.proto`, `resource/v1/resource.proto` and
//! `collector/trace/v1/trace_service.proto`.

use std::collections::VecDeque;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::protobuf::{
    put_bytes_field, put_fixed32_field, put_fixed64_field, put_message, put_varint_field,
};

/// `Span.kind`: SPAN_KIND_INTERNAL.
const KIND_INTERNAL: u32 = 1;
/// `Span.flags`: bits 0-7 are the W3C trace flags; this bit says whether the parent is remote is
/// known (SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK), the next that it is (..._IS_REMOTE_MASK).
const FLAGS_HAS_IS_REMOTE: u32 = 0x100;

/// One span's own fields, all but its attributes.
pub struct SpanFields<'a> {
    pub trace_id: u128,
    pub span_id: u64,
    /// 0: a root span.
    pub parent_id: u64,
    pub trace_state: &'a str,
    /// W3C trace flags in bits 0-7, and the parent's remoteness bits (FLAGS_HAS_IS_REMOTE).
    pub flags: u32,
    pub name: &'a str,
    pub kind: u32,
    pub start_ns: u64,
    pub end_ns: u64,
    /// `Status.code`: 0 unset, 1 ok, 2 error.
    pub status: u32,
    pub message: &'a str,
}

/// A `Span` message's body: `attributes` appends its `KeyValue` fields (field 9).
pub fn encode_span<E>(
    out: &mut Vec<u8>,
    span: &SpanFields<'_>,
    attributes: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    put_bytes_field(out, 1, &span.trace_id.to_be_bytes());
    put_bytes_field(out, 2, &span.span_id.to_be_bytes());
    if !span.trace_state.is_empty() {
        put_bytes_field(out, 3, span.trace_state.as_bytes());
    }
    if span.parent_id != 0 {
        put_bytes_field(out, 4, &span.parent_id.to_be_bytes());
    }
    put_bytes_field(out, 5, span.name.as_bytes());
    put_varint_field(out, 6, u64::from(span.kind));
    put_fixed64_field(out, 7, span.start_ns);
    put_fixed64_field(out, 8, span.end_ns);
    attributes(out)?;
    if span.status != 0 || !span.message.is_empty() {
        put_message::<E>(out, 15, |status| {
            if !span.message.is_empty() {
                put_bytes_field(status, 2, span.message.as_bytes());
            }
            if span.status != 0 {
                put_varint_field(status, 3, u64::from(span.status));
            }
            Ok(())
        })?;
    }
    put_fixed32_field(out, 16, span.flags);
    Ok(())
}

/// Lower-case hex digits of `value`'s low `digits` nibbles, most significant first.
fn push_hex(out: &mut Vec<u8>, value: u128, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..digits).rev() {
        out.push(HEX[((value >> (shift * 4)) & 0xf) as usize]);
    }
}

/// The request header lines that hand a span's context on: `traceparent` (version 00, flags' low
/// byte) and, when there is one, `tracestate`.
pub fn traceparent_lines(trace_id: u128, span_id: u64, flags: u32, trace_state: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(72 + trace_state.len());
    out.extend_from_slice(b"traceparent: 00-");
    push_hex(&mut out, trace_id, 32);
    out.push(b'-');
    push_hex(&mut out, u128::from(span_id), 16);
    out.push(b'-');
    push_hex(&mut out, u128::from(flags & 0xff), 2);
    out.extend_from_slice(b"\r\n");
    if !trace_state.is_empty() {
        out.extend_from_slice(b"tracestate: ");
        out.extend_from_slice(trace_state.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// `traceparent_lines` for Python: a third of the cost of Python's bytes formatting.
#[pyfunction]
#[pyo3(signature = (trace_id, span_id, flags, trace_state))]
pub fn traceparent_line<'py>(
    py: Python<'py>,
    trace_id: u128,
    span_id: u64,
    flags: u32,
    trace_state: &str,
) -> Bound<'py, PyBytes> {
    PyBytes::new(
        py,
        &traceparent_lines(trace_id, span_id, flags, trace_state),
    )
}

/// Encoded spans waiting for export, in batches oldest first, and the resource and scope they go
/// out under. A batch is taken whole, so nothing waiting is ever moved.
pub struct SpanQueue {
    /// `ResourceSpans.resource` (field 1), encoded once.
    resource: Vec<u8>,
    /// `ScopeSpans.scope` (field 1), encoded once.
    scope: Vec<u8>,
    /// Per batch: its `ScopeSpans.spans` fields (2) one after the other, and how many.
    batches: VecDeque<(Vec<u8>, usize)>,
    batch_size: usize,
    waiting: usize,
    max_spans: usize,
    dropped: u64,
}

impl SpanQueue {
    pub fn new(resource: Vec<u8>, scope: Vec<u8>, batch_size: usize, max_spans: usize) -> Self {
        SpanQueue {
            resource,
            scope,
            batches: VecDeque::new(),
            batch_size: batch_size.max(1),
            waiting: 0,
            max_spans,
            dropped: 0,
        }
    }

    /// Encode one span (`write` appends the `Span` body); a full queue drops it and counts it.
    pub fn push<E>(&mut self, write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<(), E> {
        if self.waiting >= self.max_spans {
            self.dropped += 1;
            return Ok(());
        }
        if self
            .batches
            .back()
            .is_none_or(|(_, count)| *count >= self.batch_size)
        {
            self.batches.push_back((Vec::with_capacity(16 * 1024), 0));
        }
        let (spans, count) = self.batches.back_mut().expect("a batch was just made");
        if let Err(error) = put_message(spans, 2, write) {
            if *count == 0 {
                self.batches.pop_back(); // no empty batch left behind: take() would send it
            }
            return Err(error);
        }
        *count += 1;
        self.waiting += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.waiting
    }

    pub fn is_empty(&self) -> bool {
        self.waiting == 0
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// An `ExportTraceServiceRequest` of the oldest batch (`batch_size` spans, or fewer when that
    /// is all there is), which leaves the queue; None when no span waits.
    pub fn take(&mut self) -> Option<Vec<u8>> {
        let (spans, count) = self.batches.pop_front()?;
        self.waiting -= count;
        let mut body =
            Vec::with_capacity(spans.len() + self.resource.len() + self.scope.len() + 16);
        let (resource, scope) = (&self.resource, &self.scope);
        put_message::<()>(&mut body, 1, |resource_spans| {
            resource_spans.extend_from_slice(resource);
            put_message(resource_spans, 2, |scope_spans| {
                scope_spans.extend_from_slice(scope);
                scope_spans.extend_from_slice(&spans);
                Ok(())
            })
        })
        .expect("writing cannot fail");
        Some(body)
    }
}

/// splitmix64: ids that are unique and uniformly spread (the sampler reads a trace id's low 64
/// bits as a random number), seeded from the OS per queue, so per worker.
struct IdSource(u64);

impl IdSource {
    fn seeded() -> Self {
        let mut seed = [0u8; 8];
        // SAFETY: getrandom writes at most `seed.len()` bytes into `seed`.
        let got = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), seed.len(), 0) };
        let mut state = u64::from_ne_bytes(seed);
        if got != seed.len() as isize {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            state = now ^ (u64::from(std::process::id()) << 32);
        }
        IdSource(state)
    }

    /// Never 0: an all-zero id is invalid in W3C trace context and OTLP.
    fn next(&mut self) -> u64 {
        loop {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            if z != 0 {
                return z;
            }
        }
    }
}

/// `KeyValue` fields (number `field`) for each item of a str-keyed dict; a None value is left out.
fn put_attributes(out: &mut Vec<u8>, field: u32, attributes: &Bound<'_, PyDict>) -> PyResult<()> {
    for (key, value) in attributes.iter() {
        if value.is_none() {
            continue;
        }
        let key = key.cast::<PyString>()?.to_str()?;
        put_message(out, field, |pair| {
            put_bytes_field(pair, 1, key.as_bytes());
            put_message(pair, 2, |any| put_any_value(any, &value, key, true))
        })?;
    }
    Ok(())
}

/// An `AnyValue` body: str, bool, int (int64; a wider one as a double), float, or a tuple or list
/// of those (not nested).
fn put_any_value(
    out: &mut Vec<u8>,
    value: &Bound<'_, PyAny>,
    key: &str,
    top: bool,
) -> PyResult<()> {
    if let Ok(text) = value.cast::<PyString>() {
        put_bytes_field(out, 1, text.to_str()?.as_bytes());
    } else if let Ok(flag) = value.cast::<PyBool>() {
        put_varint_field(out, 2, u64::from(flag.is_true()));
    } else if value.is_instance_of::<PyInt>() {
        match value.extract::<i64>() {
            Ok(number) => put_varint_field(out, 3, number as u64),
            // Past int64 (a client's max_tokens may be anything): the nearest double, as OTLP
            // has no wider integer.
            Err(_) => put_fixed64_field(out, 4, value.extract::<f64>()?.to_bits()),
        }
    } else if let Ok(number) = value.cast::<PyFloat>() {
        put_fixed64_field(out, 4, number.value().to_bits());
    } else if top && (value.is_instance_of::<PyTuple>() || value.is_instance_of::<PyList>()) {
        put_message::<PyErr>(out, 5, |array| {
            for item in value.try_iter()? {
                put_message(array, 1, |any| put_any_value(any, &item?, key, false))?;
            }
            Ok(())
        })?;
    } else {
        return Err(PyValueError::new_err(format!(
            "attribute {key}: cannot export a {}",
            value.get_type().name()?
        )));
    }
    Ok(())
}

/// Python layer over `SpanQueue`: spans from plain values, and the ids for them.
#[pyclass(name = "OtlpSpans", module = "gatecore._core")]
pub struct PyOtlpSpans {
    queue: SpanQueue,
    ids: IdSource,
}

#[pymethods]
impl PyOtlpSpans {
    #[new]
    #[pyo3(signature = (resource, scope_name, scope_version, batch_size, max_spans))]
    fn new(
        resource: &Bound<'_, PyDict>,
        scope_name: &str,
        scope_version: &str,
        batch_size: usize,
        max_spans: usize,
    ) -> PyResult<Self> {
        let mut resource_field = Vec::new();
        put_message(&mut resource_field, 1, |r| put_attributes(r, 1, resource))?;
        let mut scope_field = Vec::new();
        put_message::<()>(&mut scope_field, 1, |s| {
            put_bytes_field(s, 1, scope_name.as_bytes());
            put_bytes_field(s, 2, scope_version.as_bytes());
            Ok(())
        })
        .expect("writing cannot fail");
        Ok(PyOtlpSpans {
            queue: SpanQueue::new(resource_field, scope_field, batch_size, max_spans.max(1)),
            ids: IdSource::seeded(),
        })
    }

    /// A new span id (64 random bits, never 0).
    fn span_id(&mut self) -> u64 {
        self.ids.next()
    }

    /// A new trace id (128 random bits, never 0).
    fn trace_id(&mut self) -> u128 {
        (u128::from(self.ids.next()) << 64) | u128::from(self.ids.next())
    }

    #[pyo3(signature = (
        trace_id, span_id, parent_id, name, kind, start_ns, end_ns, attributes,
        status = 0, message = "", trace_state = "", flags = 0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        trace_id: u128,
        span_id: u64,
        parent_id: u64,
        name: &str,
        kind: u32,
        start_ns: u64,
        end_ns: u64,
        attributes: Option<&Bound<'_, PyDict>>,
        status: u32,
        message: &str,
        trace_state: &str,
        flags: u32,
    ) -> PyResult<usize> {
        let span = SpanFields {
            trace_id,
            span_id,
            parent_id,
            trace_state,
            flags,
            name,
            kind,
            start_ns,
            end_ns,
            status,
            message,
        };
        self.queue.push(|out| {
            encode_span(out, &span, |out| match attributes {
                Some(attributes) => put_attributes(out, 9, attributes),
                None => Ok(()),
            })
        })?;
        Ok(self.queue.len())
    }

    /// Internal spans one after the other under `parent_id`: the first from `start_ns`, each to its
    /// end in `ends` and the next from there; as many as `names` and `ends` both have. Clock
    /// readings are moved to epoch time by `offset_ns`; the spans carry the parent's trace state.
    #[pyo3(signature = (trace_id, parent_id, flags, names, start_ns, ends, offset_ns, trace_state = None))]
    #[allow(clippy::too_many_arguments)]
    fn add_chain(
        &mut self,
        trace_id: u128,
        parent_id: u64,
        flags: u32,
        names: &Bound<'_, PyTuple>,
        start_ns: i64,
        ends: &Bound<'_, PyList>,
        offset_ns: i64,
        trace_state: Option<&str>,
    ) -> PyResult<usize> {
        let mut last = start_ns;
        for (name, end) in names.iter().zip(ends.iter()) {
            let end: i64 = end.extract()?;
            let name = name.cast::<PyString>()?;
            let span = SpanFields {
                trace_id,
                span_id: self.ids.next(),
                parent_id,
                trace_state: trace_state.unwrap_or(""),
                flags: (flags & 0xff) | FLAGS_HAS_IS_REMOTE,
                name: name.to_str()?,
                kind: KIND_INTERNAL,
                start_ns: last.saturating_add(offset_ns) as u64,
                end_ns: end.saturating_add(offset_ns) as u64,
                status: 0,
                message: "",
            };
            self.queue
                .push(|out| encode_span::<PyErr>(out, &span, |_| Ok(())))?;
            last = end;
        }
        Ok(self.queue.len())
    }

    /// An `ExportTraceServiceRequest` of the oldest batch (`batch_size` spans, or all that wait
    /// when fewer do), which leaves the queue; None when none wait.
    fn take<'py>(&mut self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        let body = self.queue.take()?;
        Some(PyBytes::new(py, &body))
    }

    /// Spans dropped because the queue was full, since it was made.
    #[getter]
    fn dropped(&self) -> u64 {
        self.queue.dropped()
    }

    fn __len__(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(name: &str) -> SpanFields<'_> {
        SpanFields {
            trace_id: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
            span_id: 0x1112_1314_1516_1718,
            parent_id: 0,
            trace_state: "",
            flags: 0x101,
            name,
            kind: 2,
            start_ns: 1,
            end_ns: 2,
            status: 0,
            message: "",
        }
    }

    fn queue(batch: usize, max: usize) -> SpanQueue {
        SpanQueue::new(vec![0x0a, 0x00], vec![0x0a, 0x02, 0x0a, 0x00], batch, max)
    }

    #[test]
    fn a_span_encodes_its_ids_big_endian_and_leaves_out_the_defaults() {
        let mut out = Vec::new();
        encode_span::<()>(&mut out, &span("s"), |_| Ok(())).unwrap();
        let mut expected = vec![0x0a, 16];
        expected.extend(1u8..=16);
        expected.extend([0x12, 8]);
        expected.extend(0x11u8..=0x18);
        expected.extend([0x2a, 1, b's', 0x30, 2]);
        expected.extend([0x39, 1, 0, 0, 0, 0, 0, 0, 0, 0x41, 2, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend([0x85, 0x01, 0x01, 0x01, 0, 0]);
        assert_eq!(out, expected);
    }

    #[test]
    fn a_status_and_a_parent_are_written_when_set() {
        let mut fields = span("s");
        fields.parent_id = 0xff;
        fields.status = 2;
        fields.message = "no";
        let mut out = Vec::new();
        encode_span::<()>(&mut out, &fields, |_| Ok(())).unwrap();
        let parent = [0x22, 8, 0, 0, 0, 0, 0, 0, 0, 0xff];
        assert!(out.windows(parent.len()).any(|w| w == parent));
        let status = [0x7a, 6, 0x12, 2, b'n', b'o', 0x18, 2];
        assert!(out.windows(status.len()).any(|w| w == status));
    }

    #[test]
    fn take_wraps_the_oldest_spans_and_keeps_the_rest() {
        let mut q = queue(2, 10);
        for name in ["a", "b", "c"] {
            q.push::<()>(|o| {
                put_bytes_field(o, 5, name.as_bytes());
                Ok(())
            })
            .unwrap();
        }
        let body = q.take().unwrap();
        // ResourceSpans { resource {}, ScopeSpans { scope {name ""}, span a, span b } }
        assert_eq!(
            body,
            [
                0x0a, 18, 0x0a, 0x00, 0x12, 14, 0x0a, 0x02, 0x0a, 0x00, 0x12, 3, 0x2a, 1, b'a',
                0x12, 3, 0x2a, 1, b'b'
            ]
        );
        assert_eq!(q.len(), 1);
        let rest = q.take().unwrap();
        assert_eq!(&rest[rest.len() - 3..], [0x2a, 1, b'c']);
        assert!(q.is_empty() && q.take().is_none());
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let mut q = queue(1, 2);
        for _ in 0..5 {
            q.push::<()>(|o| {
                o.push(0);
                Ok(())
            })
            .unwrap();
        }
        assert_eq!((q.len(), q.dropped()), (2, 3));
    }

    #[test]
    fn a_span_that_fails_to_encode_leaves_no_batch() {
        let mut q = queue(2, 10);
        assert!(q
            .push(|o| {
                o.push(1);
                Err("bad")
            })
            .is_err());
        assert!(q.is_empty() && q.take().is_none());
    }

    #[test]
    fn traceparent_lines_are_fixed_width_lower_hex() {
        assert_eq!(
            traceparent_lines(
                0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
                0x00f0_67aa_0ba9_02b7,
                0x301,
                ""
            ),
            b"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
        );
        assert_eq!(
            traceparent_lines(1, 2, 0, "a=b"),
            b"traceparent: 00-00000000000000000000000000000001-0000000000000002-00\r\ntracestate: a=b\r\n"
        );
    }

    #[test]
    fn ids_are_never_zero_and_do_not_repeat() {
        let mut ids = IdSource(0u64.wrapping_sub(0x9e37_79b9_7f4a_7c15));
        let drawn: std::collections::HashSet<u64> = (0..10_000).map(|_| ids.next()).collect();
        assert_eq!(drawn.len(), 10_000);
        assert!(!drawn.contains(&0));
    }
}
