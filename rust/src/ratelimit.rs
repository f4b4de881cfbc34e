//! Rate-limit and budget arithmetic on single `AtomicU64` cells, lock-free, so that the cells can
//! live in memory shared by several worker processes (see `counters.rs`).
//!
//! - GCRA (generic cell rate algorithm) for requests and tokens per period: the cell holds the
//!   theoretical arrival time (TAT, ns on the caller's clock). `limit` units per `period` are
//!   allowed, all of them at once when the cell is idle (burst = limit).
//! - Concurrency: the cell counts requests in flight; `acquire` only below the limit.
//! - Budgets: see `budget_cells.rs` (spend tagged with its period).

use std::sync::atomic::{AtomicU64, Ordering};

/// The outcome of one GCRA check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcraDecision {
    pub allowed: bool,
    /// Units still available right after this check.
    pub remaining: u64,
    /// Nanoseconds until the cell is back to a full `limit`.
    pub reset_ns: u64,
    /// Nanoseconds until a request of the same cost could pass (0 when allowed).
    pub retry_ns: u64,
}

/// Nanoseconds one unit occupies: `period / limit` (at least 1).
fn emission_interval(period_ns: u64, limit: u64) -> u64 {
    (period_ns / limit.max(1)).max(1)
}

/// Take `cost` units from a GCRA cell at time `now_ns`; nothing is taken when refused.
///
/// A cost larger than the whole `limit` is refused with `retry_ns = u64::MAX` (it can never pass).
pub fn gcra_take(
    cell: &AtomicU64,
    now_ns: u64,
    period_ns: u64,
    limit: u64,
    cost: u64,
) -> GcraDecision {
    gcra_take_upto(cell, now_ns, period_ns, limit, cost, cost).0
}

/// Take between `min_cost` and `max_cost` units: as many as are available, refused when fewer than
/// `min_cost` are. Returns the decision and the units taken (for an estimate that is only a guess
/// above `min_cost`). Nothing is taken when refused.
pub fn gcra_take_upto(
    cell: &AtomicU64,
    now_ns: u64,
    period_ns: u64,
    limit: u64,
    min_cost: u64,
    max_cost: u64,
) -> (GcraDecision, u64) {
    let interval = emission_interval(period_ns, limit);
    let period = interval.saturating_mul(limit.max(1));
    let mut tat = cell.load(Ordering::Acquire);
    loop {
        let base = tat.max(now_ns);
        let used = base - now_ns;
        let available = period.saturating_sub(used) / interval;
        if min_cost > limit || available < min_cost {
            let retry_ns = if min_cost > limit {
                u64::MAX
            } else {
                // When `min_cost` units fit: the TAT must fall to `period - min_cost * interval`.
                used - (period - min_cost * interval)
            };
            let refused = GcraDecision {
                allowed: false,
                remaining: available,
                reset_ns: used,
                retry_ns,
            };
            return (refused, 0);
        }
        let cost = max_cost.min(available).max(min_cost);
        let new_tat = base.saturating_add(interval.saturating_mul(cost));
        match cell.compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                let used = new_tat - now_ns;
                let decision = GcraDecision {
                    allowed: true,
                    remaining: (period - used) / interval,
                    reset_ns: used,
                    retry_ns: 0,
                };
                return (decision, cost);
            }
            Err(current) => tat = current,
        }
    }
}

/// Give `units` back to a GCRA cell (a refund, or a correction when fewer tokens were used than
/// estimated). Never moves the TAT below `now_ns`'s idle state in a way that would over-credit:
/// a TAT in the past already means "full".
pub fn gcra_give(cell: &AtomicU64, period_ns: u64, limit: u64, units: u64) {
    let back = emission_interval(period_ns, limit).saturating_mul(units);
    let _ = cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
        Some(tat.saturating_sub(back))
    });
}

/// Charge `units` more to a GCRA cell without a check (more tokens used than estimated): later
/// requests wait for them.
pub fn gcra_charge(cell: &AtomicU64, now_ns: u64, period_ns: u64, limit: u64, units: u64) {
    let more = emission_interval(period_ns, limit).saturating_mul(units);
    let _ = cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
        Some(tat.max(now_ns).saturating_add(more))
    });
}

/// Take a concurrency slot if fewer than `limit` are in use; returns (taken, in use after).
pub fn slot_acquire(cell: &AtomicU64, limit: u64) -> (bool, u64) {
    let mut current = cell.load(Ordering::Acquire);
    loop {
        if current >= limit {
            return (false, current);
        }
        match cell.compare_exchange_weak(current, current + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return (true, current + 1),
            Err(now) => current = now,
        }
    }
}

/// Give back a concurrency slot (never below zero).
pub fn slot_release(cell: &AtomicU64) {
    let _ = cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        Some(n.saturating_sub(1))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const S: u64 = 1_000_000_000;

    #[test]
    fn burst_of_limit_then_refused() {
        let cell = AtomicU64::new(0);
        let now = 100 * S;
        for i in 0..10 {
            let d = gcra_take(&cell, now, 60 * S, 10, 1);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 9 - i);
        }
        let d = gcra_take(&cell, now, 60 * S, 10, 1);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_ns, 6 * S);
        assert_eq!(d.reset_ns, 60 * S);
        // One emission interval later one more passes.
        assert!(gcra_take(&cell, now + 6 * S, 60 * S, 10, 1).allowed);
        assert!(!gcra_take(&cell, now + 6 * S, 60 * S, 10, 1).allowed);
    }

    #[test]
    fn refill_is_capped_at_limit() {
        let cell = AtomicU64::new(0);
        assert!(gcra_take(&cell, S, 60 * S, 5, 5).allowed);
        // A long idle time does not bank more than `limit`.
        let later = 1000 * S;
        assert!(gcra_take(&cell, later, 60 * S, 5, 5).allowed);
        assert!(!gcra_take(&cell, later, 60 * S, 5, 1).allowed);
    }

    #[test]
    fn cost_over_limit_never_passes() {
        let cell = AtomicU64::new(0);
        let d = gcra_take(&cell, S, 60 * S, 100, 101);
        assert!(!d.allowed);
        assert_eq!(d.retry_ns, u64::MAX);
        assert_eq!(d.remaining, 100);
        assert_eq!(cell.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn tokens_corrected_both_ways() {
        let cell = AtomicU64::new(0);
        let now = 10 * S;
        assert!(gcra_take(&cell, now, 60 * S, 1000, 900).allowed);
        assert!(!gcra_take(&cell, now, 60 * S, 1000, 200).allowed);
        // The request used 100, not 900: 800 come back.
        gcra_give(&cell, 60 * S, 1000, 800);
        let d = gcra_take(&cell, now, 60 * S, 1000, 200);
        assert!(d.allowed);
        assert_eq!(d.remaining, 700);
        // It used 600 more than estimated.
        gcra_charge(&cell, now, 60 * S, 1000, 600);
        assert!(!gcra_take(&cell, now, 60 * S, 1000, 200).allowed);
        assert!(gcra_take(&cell, now, 60 * S, 1000, 100).allowed);
    }

    #[test]
    fn give_back_never_over_credits() {
        let cell = AtomicU64::new(0);
        gcra_give(&cell, 60 * S, 10, 5);
        assert_eq!(cell.load(Ordering::Relaxed), 0);
        let d = gcra_take(&cell, 5 * S, 60 * S, 10, 1);
        assert_eq!(d.remaining, 9);
    }

    #[test]
    fn take_upto_takes_what_is_available() {
        let cell = AtomicU64::new(0);
        let now = 10 * S;
        let (d, taken) = gcra_take_upto(&cell, now, 60 * S, 1000, 10, 5000);
        assert!(d.allowed);
        assert_eq!((taken, d.remaining), (1000, 0));
        gcra_give(&cell, 60 * S, 1000, 990);
        let (d, taken) = gcra_take_upto(&cell, now, 60 * S, 1000, 10, 1500);
        assert_eq!((d.allowed, taken, d.remaining), (true, 990, 0));
        gcra_give(&cell, 60 * S, 1000, 5);
        let (d, taken) = gcra_take_upto(&cell, now, 60 * S, 1000, 10, 1500);
        assert_eq!((d.allowed, taken, d.remaining), (false, 0, 5));
        // 5 more units (5 × 60 ms) are needed.
        assert_eq!(d.retry_ns, 300_000_000);
        assert!(
            !gcra_take_upto(&cell, now, 60 * S, 1000, 1001, 1001)
                .0
                .allowed
        );
    }

    #[test]
    fn slots_acquire_and_release() {
        let cell = AtomicU64::new(0);
        assert_eq!(slot_acquire(&cell, 2), (true, 1));
        assert_eq!(slot_acquire(&cell, 2), (true, 2));
        assert_eq!(slot_acquire(&cell, 2), (false, 2));
        slot_release(&cell);
        assert_eq!(slot_acquire(&cell, 2), (true, 2));
        slot_release(&cell);
        slot_release(&cell);
        slot_release(&cell);
        assert_eq!(cell.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn concurrent_takes_admit_exactly_limit() {
        let cell = Arc::new(AtomicU64::new(0));
        let now = 50 * S;
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let cell = Arc::clone(&cell);
                std::thread::spawn(move || {
                    (0..100)
                        .filter(|_| gcra_take(&cell, now, 60 * S, 123, 1).allowed)
                        .count()
                })
            })
            .collect();
        let granted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(granted, 123);
    }
}
