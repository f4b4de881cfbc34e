//! The per-request histograms of one worker's metrics (overhead, duration, tokens, TTFT, time per
//! output token), filled through `request_metrics.rs`.
//!
//! Each label set (model, deployment, endpoint) owns six consecutive histograms, in `KINDS` order.
//! In Python each observation was a bisect and two list updates on boxed numbers (a new int object
//! per increment past 256); here the counts are plain integers side by side.

/// The histograms of a label set, in order; a kind's bounds are `bounds[kind]`.
pub const OVERHEAD: usize = 0;
pub const DURATION: usize = 1;
pub const INPUT_TOKENS: usize = 2;
pub const OUTPUT_TOKENS: usize = 3;
pub const TTFT: usize = 4;
pub const TPOT: usize = 5;
pub const KINDS: usize = 6;

pub struct RequestHistograms {
    /// Bucket bounds per kind, in the unit observed (ns for durations, tokens, seconds for TPOT).
    bounds: Vec<Vec<f64>>,
    /// What a kind's sum is divided by in `rows` (1e9 for ns: the exposition is in seconds).
    scale: Vec<f64>,
    /// Per histogram: one count per bound then +Inf.
    counts: Vec<Vec<u64>>,
    sums: Vec<f64>,
}

impl RequestHistograms {
    pub fn new(bounds: Vec<Vec<f64>>, scale: Vec<f64>) -> Self {
        RequestHistograms {
            bounds,
            scale,
            counts: Vec::new(),
            sums: Vec::new(),
        }
    }

    /// A label set's six histograms; returns the first one's index.
    pub fn add_set(&mut self) -> usize {
        let base = self.counts.len();
        for kind in 0..KINDS {
            self.counts.push(vec![0; self.bounds[kind].len() + 1]);
            self.sums.push(0.0);
        }
        base
    }

    fn add(&mut self, base: usize, kind: usize, value: f64) {
        let bucket = self.bounds[kind].partition_point(|&bound| bound < value);
        self.counts[base + kind][bucket] += 1;
        self.sums[base + kind] += value;
    }

    /// One request of the set at `base`; a negative value is "not observed" (no duration for an
    /// error, which Python labels with its type; no tokens, TTFT or TPOT where there are none).
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        base: usize,
        overhead_ns: i64,
        duration_ns: i64,
        input_tokens: i64,
        output_tokens: i64,
        ttft_ns: i64,
        tpot_s: f64,
    ) {
        self.add(base, OVERHEAD, overhead_ns.max(0) as f64);
        if duration_ns >= 0 {
            self.add(base, DURATION, duration_ns as f64);
        }
        if input_tokens >= 0 {
            self.add(base, INPUT_TOKENS, input_tokens as f64);
            self.add(base, OUTPUT_TOKENS, output_tokens.max(0) as f64);
        }
        if ttft_ns >= 0 {
            self.add(base, TTFT, ttft_ns as f64);
        }
        if tpot_s >= 0.0 {
            self.add(base, TPOT, tpot_s);
        }
    }

    /// Every histogram observed at least once: (index, counts then the sum in exposition units).
    pub fn rows(&self) -> Vec<(usize, Vec<f64>)> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, counts)| counts.iter().any(|&c| c > 0))
            .map(|(i, counts)| {
                let mut row: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
                row.push(self.sums[i] / self.scale[i % KINDS]);
                (i, row)
            })
            .collect()
    }
}

/// Small histograms for tests: durations bounded at 1 µs and 1 ms, tokens at 10, TPOT at 0.5 s.
#[cfg(test)]
pub(crate) fn test_histograms() -> RequestHistograms {
    let ns = vec![1e3, 1e6];
    RequestHistograms::new(
        vec![
            ns.clone(),
            ns.clone(),
            vec![10.0],
            vec![10.0],
            ns,
            vec![0.5],
        ],
        vec![1e9, 1e9, 1.0, 1.0, 1e9, 1.0],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histograms() -> RequestHistograms {
        test_histograms()
    }

    #[test]
    fn a_request_fills_its_sets_histograms_only() {
        let mut h = histograms();
        let first = h.add_set();
        let second = h.add_set();
        assert_eq!((first, second), (0, KINDS));
        h.observe(second, 1_000, 2_000_000, 10, 11, 500, 0.25);
        let rows = h.rows();
        let indices: Vec<usize> = rows.iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, (KINDS..2 * KINDS).collect::<Vec<_>>());
        assert_eq!(rows[0].1, vec![1.0, 0.0, 0.0, 1e-6]); // overhead: le 1 µs is inclusive
        assert_eq!(rows[1].1, vec![0.0, 0.0, 1.0, 2e-3]); // duration past the last bound: +Inf
        assert_eq!(rows[2].1, vec![1.0, 0.0, 10.0]); // input tokens, unscaled
        assert_eq!(rows[3].1, vec![0.0, 1.0, 11.0]);
        assert_eq!(rows[5].1, vec![1.0, 0.0, 0.25]);
    }

    #[test]
    fn negative_values_are_not_observed() {
        let mut h = histograms();
        let base = h.add_set();
        h.observe(base, 5, -1, -1, -1, -1, -1.0); // an error before any answer
        let rows = h.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, base + OVERHEAD);
    }
}
