//! Budget cells: spend in micro-units, tagged with the budget period it belongs to.
//!
//! A budget's cell is named by its scope alone, not by its period, so a new period reuses the cell
//! instead of claiming another slot of the shared table (slots are never freed: with the period in
//! the name, every period of every scope took one for good, and a short rolling window filled the
//! table). The word keeps the period's 16-bit tag in its top bits and the spend in the other 48
//! (up to 2^48 - 1 micro-units, $281M a period). Every operation is one compare-and-swap on the word,
//! so a period turns over atomically: the first write of a new period starts it from zero.
//!
//! Tags are compared as serial numbers (RFC 1982): a tag up to 2^15 periods ahead is newer. A
//! request that started in a period that has since ended (the word carries a newer tag) counts in
//! the newer period when it adds, and its corrections downwards are dropped (its reservation was
//! made in a period that is gone): over a period's turn a scope is charged too much, never too little.

use std::sync::atomic::{AtomicU64, Ordering};

const TAG_SHIFT: u32 = 48;
/// The largest spend a word holds.
pub const MAX_SPEND: u64 = (1 << TAG_SHIFT) - 1;

fn word(tag: u16, spend: u64) -> u64 {
    (u64::from(tag) << TAG_SHIFT) | spend.min(MAX_SPEND)
}

/// Whether tag `a` is of a later period than `b`.
fn later(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// The period a write with `tag` lands in and the spend the word holds for it: an earlier period's
/// word holds nothing of this one; a later period's word is written in that later period.
fn view(current: u64, tag: u16) -> (u16, u64) {
    let found = (current >> TAG_SHIFT) as u16;
    if found == tag {
        (tag, current & MAX_SPEND)
    } else if later(tag, found) {
        (tag, 0)
    } else {
        (found, current & MAX_SPEND)
    }
}

/// The spend the word holds for period `tag` (0 when the word is of another period).
pub fn spend(cell: &AtomicU64, tag: u16) -> u64 {
    let current = cell.load(Ordering::Acquire);
    if (current >> TAG_SHIFT) as u16 == tag {
        current & MAX_SPEND
    } else {
        0
    }
}

/// Reserve `amount` if it fits under `limit` in period `tag` (spend + amount <= limit, and spend
/// below the limit); returns (reserved, spend after or as found). Nothing is taken when refused.
pub fn reserve(cell: &AtomicU64, limit: u64, amount: u64, tag: u16) -> (bool, u64) {
    let (ok, _, value) = reserve_upto(cell, limit, amount, amount, tag);
    (ok, value)
}

/// Reserve between `min` and `max` in period `tag`: as much as the limit leaves, refused when less
/// than `min` is left (or the spend has reached the limit). Returns (reserved, amount taken, spend
/// after or as found); nothing is taken when refused. A request that does not bound its own cost
/// reserves what the budget can still pay and is then held to it (its output capped to the amount).
pub fn reserve_upto(
    cell: &AtomicU64,
    limit: u64,
    min: u64,
    max: u64,
    tag: u16,
) -> (bool, u64, u64) {
    let min = min.min(max);
    let limit = limit.min(MAX_SPEND);
    let mut current = cell.load(Ordering::Acquire);
    loop {
        let (period, spent) = view(current, tag);
        // Checked as "what is left" rather than `spent + amount`: no overflow.
        let left = limit.saturating_sub(spent);
        if spent >= limit || left < min {
            return (false, 0, spent);
        }
        let amount = max.min(left);
        let next = word(period, spent + amount);
        match cell.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return (true, amount, spent + amount),
            Err(now) => current = now,
        }
    }
}

/// Add a signed amount to period `tag`'s spend (settling a reservation to the real cost, seeding
/// from the ledger, a soft budget's charge); saturates at 0 and at `MAX_SPEND`. Returns the spend
/// after. A decrease for a period the word has left is dropped (see the module doc).
pub fn adjust(cell: &AtomicU64, delta: i64, tag: u16) -> u64 {
    let step = delta.unsigned_abs();
    let update = |current: u64| {
        let found = (current >> TAG_SHIFT) as u16;
        let (period, spent) = view(current, tag);
        if delta >= 0 {
            Some(word(period, spent.saturating_add(step)))
        } else if found == tag {
            Some(word(period, spent.saturating_sub(step)))
        } else {
            None
        }
    };
    match cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, update) {
        Ok(prev) => update(prev).unwrap_or(prev) & MAX_SPEND,
        Err(prev) => prev & MAX_SPEND,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Issue 17, finding 4: reservations were admitted whenever spend < limit, so eight concurrent
    /// requests each reserving close to the whole budget all passed. Now the total reserved never
    /// passes the limit, however many threads race for it.
    #[test]
    fn concurrent_reservations_never_pass_the_limit() {
        let cell = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let cell = Arc::clone(&cell);
                std::thread::spawn(move || {
                    (0..1000).filter(|_| reserve(&cell, 10_000, 7, 3).0).count()
                })
            })
            .collect();
        let granted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let spent = spend(&cell, 3);
        assert_eq!(spent, granted as u64 * 7);
        assert_eq!(spent, 10_000 / 7 * 7); // every reservation that fitted, none beyond
        assert_eq!(adjust(&cell, -(spent as i64) - 5, 3), 0);
        assert_eq!(adjust(&cell, 42, 3), 42);
    }

    #[test]
    fn a_reservation_larger_than_what_is_left_is_refused() {
        // The replay: a $1 budget, requests reserving $0.99 each.
        let cell = AtomicU64::new(0);
        assert_eq!(reserve(&cell, 1_000_000, 990_000, 0), (true, 990_000));
        assert_eq!(reserve(&cell, 1_000_000, 990_000, 0), (false, 990_000));
        // What still fits passes, exactly to the limit…
        assert_eq!(reserve(&cell, 1_000_000, 10_000, 0), (true, 1_000_000));
        // …and at the limit even a free request is refused (the budget is spent).
        assert_eq!(reserve(&cell, 1_000_000, 0, 0), (false, 1_000_000));
        // A reservation larger than the whole budget never passes, even on an empty cell.
        assert!(!reserve(&AtomicU64::new(0), 100, 101, 0).0);
        // No overflow at the top of the range, whatever the limit.
        let full = AtomicU64::new(word(0, MAX_SPEND - 1));
        assert_eq!(
            reserve(&full, u64::MAX, u64::MAX, 0),
            (false, MAX_SPEND - 1)
        );
        assert_eq!(reserve(&full, u64::MAX, 1, 0), (true, MAX_SPEND));
    }

    #[test]
    fn reserve_upto_takes_what_is_left() {
        let cell = AtomicU64::new(0);
        assert_eq!(reserve_upto(&cell, 100, 10, 70, 0), (true, 70, 70));
        // 30 left: a request wanting 70 and needing at least 10 gets the 30.
        assert_eq!(reserve_upto(&cell, 100, 10, 70, 0), (true, 30, 100));
        assert_eq!(reserve_upto(&cell, 100, 0, 70, 0), (false, 0, 100));
        adjust(&cell, -5, 0);
        // 5 left: fewer than the least.
        assert_eq!(reserve_upto(&cell, 100, 10, 70, 0), (false, 0, 95));
        assert_eq!(reserve_upto(&cell, 100, 5, 70, 0), (true, 5, 100));
        // A least above the most is the most.
        let cell = AtomicU64::new(0);
        assert_eq!(reserve_upto(&cell, 100, 80, 50, 0), (true, 50, 50));
    }

    #[test]
    fn a_new_period_starts_from_zero_in_the_same_cell() {
        let cell = AtomicU64::new(0);
        assert_eq!(reserve(&cell, 100, 100, 7), (true, 100));
        assert_eq!(reserve(&cell, 100, 1, 7), (false, 100)); // period 7 is spent
        assert_eq!(reserve(&cell, 100, 60, 8), (true, 60)); // period 8: a fresh budget
        assert_eq!((spend(&cell, 7), spend(&cell, 8)), (0, 60));
        // A request of period 7 settling late: its refund is dropped, an extra charge counts in 8.
        assert_eq!(adjust(&cell, -50, 7), 60);
        assert_eq!(adjust(&cell, 5, 7), 65);
        // A request of period 7 reserving late reserves in period 8.
        assert_eq!(reserve(&cell, 100, 35, 7), (true, 100));
        assert_eq!(spend(&cell, 8), 100);
        // Tags wrap: 0 comes after 0xffff.
        let cell = AtomicU64::new(word(0xffff, 90));
        assert_eq!(reserve(&cell, 100, 50, 0), (true, 50));
        assert_eq!(spend(&cell, 0), 50);
    }

    #[test]
    fn the_first_add_of_a_period_starts_it() {
        let cell = AtomicU64::new(word(2, 500));
        assert_eq!(adjust(&cell, 30, 3), 30); // the ledger's seed for period 3
        assert_eq!(adjust(&cell, -10, 3), 20);
        assert_eq!(adjust(&cell, -100, 3), 0);
        assert_eq!(adjust(&cell, i64::MAX, 3), MAX_SPEND);
    }
}
