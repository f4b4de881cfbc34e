//! A pool's "share clock" in shared memory: ∫ dt / n(t), with n the requests in flight on the pool,
//! counted by every worker process of the server together.
//!
//! GPU-time pricing charges each request its share of a deployment's GPU pool: the clock's advance
//! between the request's start and its end. Four cells of a `CounterTable` hold the state: a lock,
//! the requests in flight, the last time the clock advanced and the clock itself (in 1/1024 ns, so a
//! share of a nanosecond split many ways is not lost; it wraps after about 200 days, and a share is
//! a wrapping difference, so only a request longer than that would be wrong). A start or an end
//! takes the lock for a few arithmetic steps; a lock left by a process that died holding it is
//! taken over after a second.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::counters::CounterTable;

/// Clock units per nanosecond.
const SCALE_SHIFT: u32 = 10;
/// A lock held longer than this (by a process that died inside it) is taken over.
const STALE_LOCK_NS: u64 = 1_000_000_000;

/// The four cells of one pool's clock.
pub struct ShareClock<'a> {
    lock: &'a AtomicU64,
    in_flight: &'a AtomicU64,
    last_ns: &'a AtomicU64,
    clock: &'a AtomicU64,
}

impl<'a> ShareClock<'a> {
    /// The clock whose cells are at `slots` (lock, in flight, last, clock) in `table`.
    pub fn new(table: &'a CounterTable, slots: [usize; 4]) -> Self {
        ShareClock {
            lock: table.cell(slots[0]),
            in_flight: table.cell(slots[1]),
            last_ns: table.cell(slots[2]),
            clock: table.cell(slots[3]),
        }
    }

    fn locked<R>(&self, now_ns: u64, f: impl FnOnce() -> R) -> R {
        // The lock cell holds the holder's start time (+1, so that 0 stays "free").
        let mine = now_ns.wrapping_add(1).max(1);
        let mut spins = 0u32;
        loop {
            let held = self.lock.load(Ordering::Acquire);
            let stale = held != 0 && now_ns.saturating_sub(held) > STALE_LOCK_NS;
            if (held == 0 || stale)
                && self
                    .lock
                    .compare_exchange(held, mine, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                break;
            }
            spins += 1;
            if spins % 64 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        let out = f();
        self.lock.store(0, Ordering::Release);
        out
    }

    /// Advance the clock to `now_ns` at the current number in flight (the lock is held).
    fn advance(&self, now_ns: u64) {
        let last = self.last_ns.load(Ordering::Acquire);
        let n = self.in_flight.load(Ordering::Acquire);
        if n > 0 && now_ns > last {
            let step = ((now_ns - last) << SCALE_SHIFT) / n;
            let clock = self.clock.load(Ordering::Acquire);
            self.clock
                .store(clock.wrapping_add(step), Ordering::Release);
        }
        if now_ns > last {
            self.last_ns.store(now_ns, Ordering::Release);
        }
    }

    /// A request starts at `now_ns`: returns the mark to pass to `end`.
    pub fn begin(&self, now_ns: u64) -> u64 {
        self.locked(now_ns, || {
            self.advance(now_ns);
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            self.clock.load(Ordering::Acquire)
        })
    }

    /// The request that started at `mark` ends at `now_ns`: its share in nanoseconds.
    pub fn end(&self, mark: u64, now_ns: u64) -> u64 {
        self.locked(now_ns, || {
            self.advance(now_ns);
            let n = self.in_flight.load(Ordering::Acquire);
            self.in_flight.store(n.saturating_sub(1), Ordering::Release);
            self.clock.load(Ordering::Acquire).wrapping_sub(mark) >> SCALE_SHIFT
        })
    }

    /// Requests in flight on the pool now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn clock_of(table: &CounterTable) -> ShareClock<'_> {
        let slots = ["l", "n", "t", "c"].map(|name| table.slot(name.as_bytes()).unwrap());
        ShareClock::new(table, slots)
    }

    #[test]
    fn splits_overlapping_requests() {
        let table = CounterTable::anonymous(64).unwrap();
        let clock = clock_of(&table);
        let (a, b) = (clock.begin(S), clock.begin(S));
        assert_eq!((clock.end(a, 3 * S), clock.end(b, 3 * S)), (S, S)); // 2 s side by side
        let d = clock.begin(10 * S);
        let e = clock.begin(11 * S);
        assert_eq!(clock.end(d, 12 * S), 3 * S / 2); // alone 1 s + half of 1 s
        assert_eq!(clock.end(e, 13 * S), 3 * S / 2);
        assert_eq!(clock.in_flight(), 0);
    }

    #[test]
    fn two_mappings_share_one_clock() {
        let path =
            std::env::temp_dir().join(format!("gatecore-share-clock-{}", std::process::id()));
        let path = path.to_str().unwrap();
        let (one, two) = (
            CounterTable::open(path, 64).unwrap(),
            CounterTable::open(path, 64).unwrap(),
        );
        let (x, y) = (clock_of(&one), clock_of(&two));
        let a = x.begin(S);
        let b = y.begin(S); // another worker's request, side by side
        assert_eq!(x.end(a, 5 * S), 2 * S);
        assert_eq!(y.end(b, 5 * S), 2 * S);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_stale_lock_is_taken_over() {
        let table = CounterTable::anonymous(64).unwrap();
        let clock = clock_of(&table);
        clock.lock.store(S, Ordering::Release); // a holder that died at t = 1 s
        let a = clock.begin(3 * S);
        assert_eq!(clock.end(a, 4 * S), S);
    }
}
