//! `gatecore_stage_duration_seconds` of one worker: a histogram per pipeline stage, filled from the
//! stage ends every request marks (through `request_metrics.rs`).
//!
//! In Python the per-stage loop (a subtraction, a bisect and two list updates per stage) cost 1.5 µs
//! a request, a third of the metrics recorder; here it is one call with the list of ends.

/// Counts per bucket (one per bound, then +Inf) and the sum in ns, per row: the stages, then
/// `upstream_connect`, then `relay`.
pub struct StageHistogram {
    stages: usize,
    bounds: Vec<i64>,
    counts: Vec<u64>,
    sums: Vec<i64>,
}

impl StageHistogram {
    pub fn new(stages: usize, bounds: Vec<i64>) -> Self {
        let rows = stages + 2;
        StageHistogram {
            stages,
            counts: vec![0; rows * (bounds.len() + 1)],
            sums: vec![0; rows],
            bounds,
        }
    }

    fn add(&mut self, row: usize, duration: i64) {
        // The first bucket whose bound is >= the duration (Prometheus' `le`).
        let bucket = self.bounds.partition_point(|&bound| bound < duration);
        self.counts[row * (self.bounds.len() + 1) + bucket] += 1;
        self.sums[row] += duration;
    }

    /// One request: each stage from the previous end (the first from `started_ns`) to its own. Once
    /// through them all, `upstream_connect` (to `sent_ns`, when the request was written upstream)
    /// and `relay`, the rest of `overhead_ns`, so that the stages and relay add up to the overhead.
    pub fn observe(&mut self, started_ns: i64, ends: &[i64], sent_ns: i64, overhead_ns: i64) {
        let mut last = started_ns;
        for (row, &end) in ends.iter().take(self.stages).enumerate() {
            self.add(row, end - last);
            last = end;
        }
        if ends.len() == self.stages {
            if sent_ns != 0 {
                self.add(self.stages, sent_ns - last);
            }
            self.add(self.stages + 1, (overhead_ns - (last - started_ns)).max(0));
        }
    }

    /// Per row: the bucket counts, then the sum in seconds.
    pub fn rows(&self) -> Vec<Vec<f64>> {
        let width = self.bounds.len() + 1;
        (0..self.stages + 2)
            .map(|row| {
                let mut out: Vec<f64> = self.counts[row * width..(row + 1) * width]
                    .iter()
                    .map(|&c| c as f64)
                    .collect();
                out.push(self.sums[row] as f64 / 1e9);
                out
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_connect_and_relay_add_up_to_the_overhead() {
        let mut h = StageHistogram::new(3, vec![10, 100, 1000]);
        // stages of 5, 50 and 500 ns; connect 7 ns; overhead 600 → relay 600 - 555 = 45.
        h.observe(1000, &[1005, 1055, 1555], 1562, 600);
        let rows = h.rows();
        assert_eq!(rows[0], vec![1.0, 0.0, 0.0, 0.0, 5e-9]);
        assert_eq!(rows[1], vec![0.0, 1.0, 0.0, 0.0, 50e-9]);
        assert_eq!(rows[2], vec![0.0, 0.0, 1.0, 0.0, 500e-9]);
        assert_eq!(rows[3], vec![1.0, 0.0, 0.0, 0.0, 7e-9]);
        assert_eq!(rows[4], vec![0.0, 1.0, 0.0, 0.0, 45e-9]);
    }

    #[test]
    fn a_request_stopped_early_counts_only_its_stages() {
        let mut h = StageHistogram::new(3, vec![10]);
        h.observe(0, &[10, 5000], 0, 9000); // refused at the second stage; a bound is inclusive
        let rows = h.rows();
        assert_eq!(rows[0], vec![1.0, 0.0, 10e-9]);
        assert_eq!(rows[1], vec![0.0, 1.0, 4990e-9]);
        assert!(rows[2..].iter().all(|row| row.iter().all(|&v| v == 0.0)));
    }

    #[test]
    fn relay_never_goes_negative_and_no_send_means_no_connect() {
        let mut h = StageHistogram::new(1, vec![10]);
        h.observe(0, &[100], 0, 50); // overhead below the stages' time (clock reads apart)
        let rows = h.rows();
        assert_eq!(rows[1], vec![0.0, 0.0, 0.0]);
        assert_eq!(rows[2], vec![1.0, 0.0, 0.0]);
    }
}
