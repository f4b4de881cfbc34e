//! A table of named `AtomicU64` cells in memory that several processes share: the workers of one
//! `gatecore serve --workers N` map the same file, so a limit holds for the server, not per worker.
//!
//! Layout: a 16-byte header (magic, slot count) then `slots` pairs of u64 (name hash, value).
//! A name is hashed (FNV-1a 64, stable across processes) and found by linear probing; an empty slot
//! (hash 0) is claimed with a compare-and-swap, so two processes naming the same cell at the same
//! time end up on one slot. Slots are never freed (the table is sized for the key population; a
//! full table is reported, never silently shared). Names are bounded by what exists, not by time: a
//! budget's cell is the same in every period (`budget_cells.rs`), so only new keys, tenants, models
//! and deployments claim slots.

use std::fs::OpenOptions;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapMut, MmapOptions};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use crate::budget_cells;
use crate::ratelimit;
use crate::share_clock::ShareClock;

const MAGIC: u64 = 0x6761_7465_636e_7431; // "gatecnt1"
const HEADER_WORDS: usize = 2;

/// 64-bit FNV-1a; never 0 (0 marks an empty slot).
pub fn name_hash(name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    if h == 0 {
        1
    } else {
        h
    }
}

/// The shared cells. Backed by a file mapping (shared between processes) or anonymous memory.
pub struct CounterTable {
    map: MmapMut,
    pub slots: usize,
}

impl CounterTable {
    /// Map (creating if needed) the table file at `path`. Every process must ask for the same
    /// `slots`; a file made for another size is refused.
    pub fn open(path: &str, slots: usize) -> std::io::Result<Self> {
        let bytes = Self::bytes_for(slots);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            file.set_len(bytes as u64)?; // zero-filled; racing creators set the same length
        } else if len != bytes as u64 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("counter table {path} has {len} bytes, expected {bytes}"),
            ));
        }
        // SAFETY: the file is only ever accessed through atomics (here and in the other workers);
        // nobody truncates it while mapped.
        let map = unsafe { MmapOptions::new().len(bytes).map_mut(&file)? };
        let table = CounterTable { map, slots };
        table.init_header()?;
        Ok(table)
    }

    /// A table private to this process (no file).
    pub fn anonymous(slots: usize) -> std::io::Result<Self> {
        let map = MmapOptions::new().len(Self::bytes_for(slots)).map_anon()?;
        let table = CounterTable { map, slots };
        table.init_header()?;
        Ok(table)
    }

    fn bytes_for(slots: usize) -> usize {
        (HEADER_WORDS + 2 * slots) * 8
    }

    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is page aligned, a multiple of 8 bytes long, and lives as long as self;
        // AtomicU64 has the layout of u64.
        unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().cast::<AtomicU64>(), self.map.len() / 8)
        }
    }

    fn init_header(&self) -> std::io::Result<()> {
        let words = self.words();
        words[1]
            .compare_exchange(0, self.slots as u64, Ordering::AcqRel, Ordering::Acquire)
            .ok();
        let _ = words[0].compare_exchange(0, MAGIC, Ordering::AcqRel, Ordering::Acquire);
        if words[0].load(Ordering::Acquire) != MAGIC
            || words[1].load(Ordering::Acquire) != self.slots as u64
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a gatecore counter table",
            ));
        }
        Ok(())
    }

    /// The slot index of `name`, claiming a free slot the first time; None when the table is full.
    pub fn slot(&self, name: &[u8]) -> Option<usize> {
        let hash = name_hash(name);
        let words = self.words();
        let start = (hash % self.slots as u64) as usize;
        for probe in 0..self.slots {
            let index = (start + probe) % self.slots;
            let key = &words[HEADER_WORDS + 2 * index];
            match key.load(Ordering::Acquire) {
                h if h == hash => return Some(index),
                0 => match key.compare_exchange(0, hash, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return Some(index),
                    Err(h) if h == hash => return Some(index),
                    Err(_) => continue,
                },
                _ => continue,
            }
        }
        None
    }

    /// The value cell of a slot (panics on an index not from `slot`).
    pub fn cell(&self, index: usize) -> &AtomicU64 {
        assert!(index < self.slots, "slot index out of range");
        &self.words()[HEADER_WORDS + 2 * index + 1]
    }

    /// Slots in use (a scan; for monitoring and tests).
    pub fn used(&self) -> usize {
        let words = self.words();
        (0..self.slots)
            .filter(|i| words[HEADER_WORDS + 2 * i].load(Ordering::Relaxed) != 0)
            .count()
    }
}

// ---------------------------------------------------------------------------------------------
// Python layer

/// Shared counter cells with GCRA, concurrency and budget operations (see `gatecore._core.pyi`).
#[pyclass(name = "CounterTable", module = "gatecore._core", frozen)]
pub struct PyCounterTable {
    table: CounterTable,
}

fn check_slots(slots: usize) -> PyResult<usize> {
    if !(16..=1 << 26).contains(&slots) {
        return Err(PyValueError::new_err(
            "slots must be between 16 and 67108864",
        ));
    }
    Ok(slots)
}

impl PyCounterTable {
    /// The shared table (for the admission plans of `admission.rs`).
    pub fn table(&self) -> &CounterTable {
        &self.table
    }

    fn share_clock(&self, slots: [usize; 4]) -> PyResult<ShareClock<'_>> {
        for slot in slots {
            self.cell(slot)?;
        }
        Ok(ShareClock::new(&self.table, slots))
    }

    fn cell(&self, slot: usize) -> PyResult<&AtomicU64> {
        if slot >= self.table.slots {
            return Err(PyValueError::new_err("slot index out of range"));
        }
        Ok(self.table.cell(slot))
    }
}

#[pymethods]
impl PyCounterTable {
    #[new]
    #[pyo3(signature = (path = None, slots = 65536))]
    fn new(path: Option<&str>, slots: usize) -> PyResult<Self> {
        let slots = check_slots(slots)?;
        let table = match path {
            Some(p) => CounterTable::open(p, slots),
            None => CounterTable::anonymous(slots),
        }
        .map_err(|e| PyOSError::new_err(e.to_string()))?;
        Ok(PyCounterTable { table })
    }

    #[getter]
    fn slots(&self) -> usize {
        self.table.slots
    }

    fn used(&self) -> usize {
        self.table.used()
    }

    fn slot(&self, name: &str) -> PyResult<usize> {
        self.table
            .slot(name.as_bytes())
            .ok_or_else(|| PyValueError::new_err("counter table is full"))
    }

    fn load(&self, slot: usize) -> PyResult<u64> {
        Ok(self.cell(slot)?.load(Ordering::Acquire))
    }

    /// (allowed, remaining, reset_ns, retry_ns)
    fn gcra_take(
        &self,
        slot: usize,
        now_ns: u64,
        period_ns: u64,
        limit: u64,
        cost: u64,
    ) -> PyResult<(bool, u64, u64, u64)> {
        let d = ratelimit::gcra_take(self.cell(slot)?, now_ns, period_ns, limit, cost);
        Ok((d.allowed, d.remaining, d.reset_ns, d.retry_ns))
    }

    /// (allowed, remaining, reset_ns, retry_ns, taken)
    #[allow(clippy::too_many_arguments)]
    fn gcra_take_upto(
        &self,
        slot: usize,
        now_ns: u64,
        period_ns: u64,
        limit: u64,
        min_cost: u64,
        max_cost: u64,
    ) -> PyResult<(bool, u64, u64, u64, u64)> {
        let (d, taken) = ratelimit::gcra_take_upto(
            self.cell(slot)?,
            now_ns,
            period_ns,
            limit,
            min_cost,
            max_cost,
        );
        Ok((d.allowed, d.remaining, d.reset_ns, d.retry_ns, taken))
    }

    fn gcra_give(&self, slot: usize, period_ns: u64, limit: u64, units: u64) -> PyResult<()> {
        ratelimit::gcra_give(self.cell(slot)?, period_ns, limit, units);
        Ok(())
    }

    fn gcra_charge(
        &self,
        slot: usize,
        now_ns: u64,
        period_ns: u64,
        limit: u64,
        units: u64,
    ) -> PyResult<()> {
        ratelimit::gcra_charge(self.cell(slot)?, now_ns, period_ns, limit, units);
        Ok(())
    }

    fn acquire(&self, slot: usize, limit: u64) -> PyResult<(bool, u64)> {
        Ok(ratelimit::slot_acquire(self.cell(slot)?, limit))
    }

    fn release(&self, slot: usize) -> PyResult<()> {
        ratelimit::slot_release(self.cell(slot)?);
        Ok(())
    }

    #[pyo3(signature = (slot, limit, amount, tag = 0))]
    fn reserve(&self, slot: usize, limit: u64, amount: u64, tag: u16) -> PyResult<(bool, u64)> {
        Ok(budget_cells::reserve(self.cell(slot)?, limit, amount, tag))
    }

    #[pyo3(signature = (slot, delta, tag = 0))]
    fn adjust(&self, slot: usize, delta: i64, tag: u16) -> PyResult<u64> {
        Ok(budget_cells::adjust(self.cell(slot)?, delta, tag))
    }

    /// The spend a budget cell holds for period `tag` (0 when it holds another period's).
    #[pyo3(signature = (slot, tag = 0))]
    fn spend(&self, slot: usize, tag: u16) -> PyResult<u64> {
        Ok(budget_cells::spend(self.cell(slot)?, tag))
    }

    /// A request starts on the pool whose share clock is at `slots`: the mark for `share_end`.
    fn share_begin(&self, slots: [usize; 4], now_ns: u64) -> PyResult<u64> {
        Ok(self.share_clock(slots)?.begin(now_ns))
    }

    /// The request that started at `mark` ends: its share of the pool, in nanoseconds.
    fn share_end(&self, slots: [usize; 4], mark: u64, now_ns: u64) -> PyResult<u64> {
        Ok(self.share_clock(slots)?.end(mark, now_ns))
    }

    /// Requests in flight on the pool whose share clock is at `slots`.
    fn share_in_flight(&self, slots: [usize; 4]) -> PyResult<u64> {
        Ok(self.share_clock(slots)?.in_flight())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_stable_slots() {
        let t = CounterTable::anonymous(64).unwrap();
        let a = t.slot(b"key:a:rpm").unwrap();
        let b = t.slot(b"key:b:rpm").unwrap();
        assert_ne!(a, b);
        assert_eq!(t.slot(b"key:a:rpm"), Some(a));
        assert_eq!(t.used(), 2);
    }

    #[test]
    fn full_table_is_reported() {
        let t = CounterTable::anonymous(16).unwrap();
        for i in 0..16 {
            assert!(t.slot(format!("n{i}").as_bytes()).is_some());
        }
        assert_eq!(t.slot(b"one too many"), None);
        assert!(t.slot(b"n3").is_some());
    }

    #[test]
    fn two_mappings_of_one_file_share_cells() {
        let dir = std::env::temp_dir().join(format!("gatecore-counters-{}", std::process::id()));
        let path = dir.to_str().unwrap().to_owned();
        let first = CounterTable::open(&path, 128).unwrap();
        let second = CounterTable::open(&path, 128).unwrap();
        let slot = first.slot(b"team:t1:rpm").unwrap();
        assert_eq!(second.slot(b"team:t1:rpm"), Some(slot));
        first.cell(slot).fetch_add(5, Ordering::AcqRel);
        assert_eq!(second.cell(slot).load(Ordering::Acquire), 5);
        assert!(CounterTable::open(&path, 256).is_err());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(name_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(name_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
