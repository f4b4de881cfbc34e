//! One worker's per-request metrics, filled in one call per finished request: the request counter
//! by status class, the cost counter, the six request histograms of its label set and the stage
//! histogram.
//!
//! The Python recorder only picks the values off the request; everything derived from them (latency,
//! overhead, TTFT, time per output token, the status class) is computed here. In the server each
//! Python-side dict update, float and extra call into Rust cost about twice what a loop shows.

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::request_histograms::{RequestHistograms, KINDS};
use crate::stage_histogram::StageHistogram;

/// Status classes 1xx to 5xx; anything else (0: no answer at all) counts as 5xx.
pub const STATUS_CLASSES: usize = 5;

/// What the recorder reads off one finished request (times in ns of one monotonic clock).
#[derive(Clone, Copy, Debug, Default)]
pub struct Finished {
    pub status: u16,
    pub started_ns: i64,
    pub finished_ns: i64,
    /// Time spent waiting on the upstream: not gatecore's overhead.
    pub upstream_ns: i64,
    /// The first byte to the client of a streamed answer with usage; 0 for none.
    pub first_byte_ns: i64,
    /// -1 when the request has no usage to count (refused, failed).
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    /// False for an error, whose duration the caller labels with its type.
    pub succeeded: bool,
    /// When the request was written upstream (0: never).
    pub sent_ns: i64,
}

pub struct RequestMetrics {
    histograms: RequestHistograms,
    stages: StageHistogram,
    requests: Vec<[u64; STATUS_CLASSES]>,
    costs: Vec<f64>,
}

impl RequestMetrics {
    pub fn new(histograms: RequestHistograms, stages: StageHistogram) -> Self {
        RequestMetrics {
            histograms,
            stages,
            requests: Vec::new(),
            costs: Vec::new(),
        }
    }

    /// A new label set; returns its index.
    pub fn add_set(&mut self) -> usize {
        self.histograms.add_set();
        self.requests.push([0; STATUS_CLASSES]);
        self.costs.push(0.0);
        self.requests.len() - 1
    }

    pub fn sets(&self) -> usize {
        self.requests.len()
    }

    /// One finished request of label set `set`, with the ends of the stages it got through.
    pub fn observe(&mut self, set: usize, request: &Finished, stage_ends: &[i64]) {
        let class = match request.status / 100 {
            class @ 1..=5 => class as usize - 1,
            _ => STATUS_CLASSES - 1,
        };
        self.requests[set][class] += 1;
        self.costs[set] += request.cost_usd;
        let latency = request.finished_ns - request.started_ns;
        let overhead = latency - request.upstream_ns;
        let (mut ttft, mut tpot) = (-1, -1.0);
        if request.first_byte_ns != 0 && request.input_tokens >= 0 {
            ttft = request.first_byte_ns - request.started_ns;
            if request.output_tokens > 1 {
                let after_first = (request.finished_ns - request.first_byte_ns) as f64 / 1e9;
                tpot = after_first / (request.output_tokens - 1) as f64;
            }
        }
        self.histograms.observe(
            set * KINDS,
            overhead,
            if request.succeeded { latency } else { -1 },
            request.input_tokens,
            request.output_tokens,
            ttft,
            tpot,
        );
        if !stage_ends.is_empty() {
            self.stages
                .observe(request.started_ns, stage_ends, request.sent_ns, overhead);
        }
    }

    /// (set, status class index, count) for every class a set has counted.
    pub fn request_counts(&self) -> Vec<(usize, usize, u64)> {
        let mut out = Vec::new();
        for (set, counts) in self.requests.iter().enumerate() {
            for (class, &count) in counts.iter().enumerate() {
                if count > 0 {
                    out.push((set, class, count));
                }
            }
        }
        out
    }

    /// (set, USD) for every set with a priced request.
    pub fn costs(&self) -> Vec<(usize, f64)> {
        (self.costs.iter().enumerate())
            .filter(|(_, &cost)| cost != 0.0)
            .map(|(set, &cost)| (set, cost))
            .collect()
    }
}

#[pyclass(name = "RequestMetrics", module = "gatecore._core")]
pub struct PyRequestMetrics {
    inner: RequestMetrics,
}

#[pymethods]
impl PyRequestMetrics {
    #[new]
    fn new(
        bounds: Vec<Vec<f64>>,
        scale: Vec<f64>,
        stages: usize,
        stage_bounds_ns: Vec<i64>,
    ) -> PyResult<Self> {
        if bounds.len() != KINDS || scale.len() != KINDS {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "bounds and scale for the {KINDS} kinds"
            )));
        }
        Ok(PyRequestMetrics {
            inner: RequestMetrics::new(
                RequestHistograms::new(bounds, scale),
                StageHistogram::new(stages, stage_bounds_ns),
            ),
        })
    }

    fn add_set(&mut self) -> usize {
        self.inner.add_set()
    }

    #[allow(clippy::too_many_arguments)]
    fn observe(
        &mut self,
        set: usize,
        status: u16,
        started_ns: i64,
        finished_ns: i64,
        upstream_ns: i64,
        first_byte_ns: i64,
        input_tokens: i64,
        output_tokens: i64,
        cost_usd: f64,
        succeeded: bool,
        stage_ends: &Bound<'_, PyList>,
        sent_ns: i64,
    ) -> PyResult<()> {
        if set >= self.inner.sets() {
            return Err(pyo3::exceptions::PyIndexError::new_err("no such label set"));
        }
        let mut marks = [0i64; 16];
        let count = stage_ends.len().min(marks.len());
        for (i, item) in stage_ends.iter().take(count).enumerate() {
            marks[i] = item.extract()?;
        }
        let request = Finished {
            status,
            started_ns,
            finished_ns,
            upstream_ns,
            first_byte_ns,
            input_tokens,
            output_tokens,
            cost_usd,
            succeeded,
            sent_ns,
        };
        self.inner.observe(set, &request, &marks[..count]);
        Ok(())
    }

    fn histogram_rows(&self) -> Vec<(usize, Vec<f64>)> {
        self.inner.histograms.rows()
    }

    fn stage_rows(&self) -> Vec<Vec<f64>> {
        self.inner.stages.rows()
    }

    fn request_counts(&self) -> Vec<(usize, usize, u64)> {
        self.inner.request_counts()
    }

    fn costs(&self) -> Vec<(usize, f64)> {
        self.inner.costs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> RequestMetrics {
        RequestMetrics::new(
            crate::request_histograms::test_histograms(),
            StageHistogram::new(2, vec![10, 100]),
        )
    }

    fn streamed() -> Finished {
        Finished {
            status: 200,
            started_ns: 1_000,
            finished_ns: 2_001_000,
            upstream_ns: 1_999_000,
            first_byte_ns: 1_001_000,
            input_tokens: 5,
            output_tokens: 3,
            cost_usd: 0.25,
            succeeded: true,
            sent_ns: 1_080,
        }
    }

    #[test]
    fn a_streamed_request_fills_counts_cost_histograms_and_stages() {
        let mut m = metrics();
        let _ = m.add_set();
        let set = m.add_set();
        m.observe(set, &streamed(), &[1_005, 1_050]);
        assert_eq!(m.request_counts(), vec![(1, 1, 1)]); // set 1, 2xx
        assert_eq!(m.costs(), vec![(1, 0.25)]);
        let rows = m.histograms.rows();
        let by_index = |i: usize| rows.iter().find(|(at, _)| *at == i).map(|(_, r)| r.clone());
        // overhead 2 ms - 1.999 ms = 1 µs (an inclusive bound); duration 2 ms: past the last bound.
        assert_eq!(by_index(KINDS).unwrap(), vec![1.0, 0.0, 0.0, 1e-6]);
        assert_eq!(by_index(KINDS + 1).unwrap(), vec![0.0, 0.0, 1.0, 2e-3]);
        // TTFT 1 ms (inclusive bound); 1 ms over two tokens after the first: 0.5 ms each.
        assert_eq!(by_index(KINDS + 4).unwrap(), vec![0.0, 1.0, 0.0, 1e-3]);
        assert_eq!(by_index(KINDS + 5).unwrap(), vec![1.0, 0.0, 0.0005]);
        let stages = m.stages.rows();
        assert_eq!(stages[0], vec![1.0, 0.0, 0.0, 5e-9]);
        assert_eq!(stages[2], vec![0.0, 1.0, 0.0, 30e-9]); // connect: 1,050 → 1,080
    }

    #[test]
    fn status_classes_errors_and_unpriced_requests() {
        let mut m = metrics();
        let set = m.add_set();
        let refused = Finished {
            status: 429,
            input_tokens: -1,
            output_tokens: -1,
            first_byte_ns: 0,
            cost_usd: 0.0,
            succeeded: false,
            sent_ns: 0,
            ..streamed()
        };
        m.observe(set, &refused, &[]);
        m.observe(
            set,
            &Finished {
                status: 0,
                ..refused
            },
            &[],
        );
        m.observe(
            set,
            &Finished {
                status: 999,
                ..refused
            },
            &[],
        );
        assert_eq!(m.request_counts(), vec![(0, 3, 1), (0, 4, 2)]);
        assert!(m.costs().is_empty());
        // Only the overhead is observed: no duration (the caller labels it), tokens or TTFT.
        let rows = m.histograms.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1[..3], [3.0, 0.0, 0.0]); // 1 µs of overhead each
        assert!(m
            .stages
            .rows()
            .iter()
            .all(|row| row.iter().all(|&v| v == 0.0)));
    }

    #[test]
    fn one_output_token_has_a_ttft_but_no_time_per_token() {
        let mut m = metrics();
        let set = m.add_set();
        m.observe(
            set,
            &Finished {
                output_tokens: 1,
                ..streamed()
            },
            &[],
        );
        let kinds: Vec<usize> = m.histograms.rows().iter().map(|(i, _)| *i).collect();
        assert_eq!(kinds, vec![0, 1, 2, 3, 4]);
    }
}
