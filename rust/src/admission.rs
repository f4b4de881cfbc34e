//! One request's admission against all of its limits, and its settle, each in one call.
//!
//! A `RulePlan` is the compiled form of a request's rules (requests and tokens per minute,
//! concurrency, budgets), built once per key, model and budget period by the Python limits stage:
//! each rule's cell slot, kind and limit. `admit` counts the request against every rule, all or
//! nothing (a refusal gives back what the rules before it took), and `settle` corrects tokens and
//! spend to the real figures and frees the concurrency slots. Doing the whole loop here keeps the
//! per-request cost of limits to two calls, whatever the number of rules.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::budget_cells;
use crate::counters::{CounterTable, PyCounterTable};
use crate::ratelimit::{gcra_charge, gcra_give, gcra_take_upto, slot_acquire, slot_release};

/// Rule kinds, as in `gatecore/limits/rules.py`.
pub const RPM: u8 = 0;
pub const TPM: u8 = 1;
pub const PARALLEL: u8 = 2;
pub const BUDGET: u8 = 3;

const MINUTE_NS: u64 = 60_000_000_000;
/// `retry_ns` of a refusal that can never pass (a cost above the whole limit) or has no GCRA wait.
pub const NEVER: u64 = u64::MAX;

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct PlanRule {
    pub slot: usize,
    pub kind: u8,
    pub limit: u64,
    /// Budgets only: crossing the limit alerts instead of refusing.
    pub soft: bool,
    /// Budgets only: the cell that makes "limit crossed" alert once per period.
    pub alert_slot: usize,
    /// Budgets only: the period's tag (`budget_cells.rs`: the cells are the same every period).
    pub tag: u16,
}

/// What one admission took and what its response headers show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// Index of the rule that refused, or -1 when every rule passed.
    pub refused: i64,
    /// For a refused requests/tokens rule: ns until the same request could pass (`NEVER`: it cannot).
    pub retry_ns: u64,
    /// What each rule took: 1 request or slot, tokens, reserved micro-units.
    pub taken: Vec<u64>,
    /// Per kind (requests, tokens): the rule with the fewest remaining, its remaining and reset.
    pub tightest: [Option<(usize, u64, u64)>; 2],
    /// What every hard budget reserved (the same for all of them), None when no hard budget
    /// applies: the most this request may cost, to which its output is capped.
    pub reserved_micros: Option<u64>,
}

/// Count a request against every rule (see the module doc). `tokens` is the estimate tpm rules
/// take (between `min_tokens` and it when `min_tokens` > 0), `micros` what budgets reserve
/// (between `min_micros` and it when `min_micros` > 0: as much as every hard budget has left).
///
/// A hard budget admits a reservation only when it fits under the limit. When several hard budgets
/// apply, each ends up holding the same amount, the least any of them could give.
pub fn admit(
    table: &CounterTable,
    rules: &[PlanRule],
    now_ns: u64,
    tokens: u64,
    micros: u64,
    min_tokens: u64,
    min_micros: u64,
) -> Admission {
    let mut out = Admission {
        refused: -1,
        retry_ns: NEVER,
        taken: Vec::with_capacity(rules.len()),
        tightest: [None, None],
        reserved_micros: None,
    };
    // The most a hard budget may still reserve: the estimate, lowered by each budget that has less.
    let mut budget_cap = micros;
    for (i, rule) in rules.iter().enumerate() {
        let cell = table.cell(rule.slot);
        let (ok, taken) = match rule.kind {
            RPM | TPM => {
                let (max, min) = match rule.kind {
                    RPM => (1, 1),
                    _ if min_tokens > 0 => (tokens, min_tokens.min(tokens)),
                    _ => (tokens, tokens),
                };
                let (d, taken) = gcra_take_upto(cell, now_ns, MINUTE_NS, rule.limit, min, max);
                if d.allowed {
                    let best = &mut out.tightest[usize::from(rule.kind)];
                    if best.is_none_or(|(_, left, _)| d.remaining < left) {
                        *best = Some((i, d.remaining, d.reset_ns));
                    }
                } else {
                    out.retry_ns = d.retry_ns;
                }
                (d.allowed, taken)
            }
            PARALLEL => (slot_acquire(cell, rule.limit).0, 1),
            _ => {
                if rule.soft {
                    budget_cells::adjust(cell, i64::try_from(micros).unwrap_or(i64::MAX), rule.tag);
                    (true, micros)
                } else if min_micros > 0 {
                    let (ok, taken, _) = budget_cells::reserve_upto(
                        cell, rule.limit, min_micros, budget_cap, rule.tag,
                    );
                    budget_cap = budget_cap.min(taken);
                    (ok, taken)
                } else {
                    (
                        budget_cells::reserve(cell, rule.limit, micros, rule.tag).0,
                        micros,
                    )
                }
            }
        };
        if !ok {
            give_back(table, &rules[..i], &out.taken);
            out.refused = i64::try_from(i).unwrap_or(i64::MAX);
            out.tightest = [None, None];
            return out;
        }
        out.taken.push(taken);
    }
    // Earlier hard budgets may hold more than a later one could give: they keep only the least.
    for (rule, taken) in rules.iter().zip(out.taken.iter_mut()) {
        if rule.kind == BUDGET && !rule.soft {
            if *taken > budget_cap {
                let excess = *taken - budget_cap;
                budget_cells::adjust(
                    table.cell(rule.slot),
                    -i64::try_from(excess).unwrap_or(i64::MAX),
                    rule.tag,
                );
                *taken = budget_cap;
            }
            out.reserved_micros = Some(budget_cap);
        }
    }
    out
}

fn give_back(table: &CounterTable, rules: &[PlanRule], taken: &[u64]) {
    for (rule, &units) in rules.iter().zip(taken) {
        let cell = table.cell(rule.slot);
        match rule.kind {
            RPM | TPM => gcra_give(cell, MINUTE_NS, rule.limit, units),
            PARALLEL => slot_release(cell),
            _ => {
                budget_cells::adjust(cell, -i64::try_from(units).unwrap_or(i64::MAX), rule.tag);
            }
        }
    }
}

/// Settle an admitted request with its real `tokens` and spend (`micros`): tpm cells get the
/// difference back or charged, slots are freed, budgets corrected. Returns the budget rules whose
/// limit this request crossed first in their period (index, spend after), each reported once.
pub fn settle(
    table: &CounterTable,
    rules: &[PlanRule],
    admission: &Admission,
    now_ns: u64,
    tokens: u64,
    micros: u64,
) -> Vec<(usize, u64)> {
    let mut crossed = Vec::new();
    for (i, (rule, &taken)) in rules.iter().zip(&admission.taken).enumerate() {
        let cell = table.cell(rule.slot);
        match rule.kind {
            TPM if tokens < taken => gcra_give(cell, MINUTE_NS, rule.limit, taken - tokens),
            TPM if tokens > taken => {
                gcra_charge(cell, now_ns, MINUTE_NS, rule.limit, tokens - taken)
            }
            PARALLEL => slot_release(cell),
            BUDGET => {
                let delta = i128::from(micros) - i128::from(taken);
                let value = budget_cells::adjust(cell, i64::try_from(delta).unwrap_or(0), rule.tag);
                let alert = table.cell(rule.alert_slot);
                if value >= rule.limit && budget_cells::reserve(alert, 1, 1, rule.tag).0 {
                    crossed.push((i, value));
                }
            }
            _ => {}
        }
    }
    crossed
}

/// OpenAI's reset format: `6s`, `1m30s`, `250ms`, `1.5s` (whole milliseconds).
pub fn reset_text(ns: u64) -> String {
    let ms = (ns + 500_000) / 1_000_000;
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (minutes, rest) = (ms / 60_000, ms % 60_000);
    let (secs, ms) = (rest / 1000, rest % 1000);
    let mut text = if ms == 0 {
        format!("{secs}s")
    } else {
        let frac = format!("{ms:03}");
        format!("{secs}.{}s", frac.trim_end_matches('0'))
    };
    if minutes > 0 {
        text = format!("{minutes}m{text}");
    }
    text
}

const HEADER_NAMES: [[&str; 3]; 2] = [
    [
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    ],
    [
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    ],
];

/// The `x-ratelimit-*` headers of an admission: for requests and tokens, the tightest rule's limit,
/// remaining and reset.
pub fn headers(rules: &[PlanRule], admission: &Admission) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(6);
    for (names, best) in HEADER_NAMES.iter().zip(admission.tightest) {
        if let Some((i, remaining, reset_ns)) = best {
            out.push((names[0], rules[i].limit.to_string()));
            out.push((names[1], remaining.to_string()));
            out.push((names[2], reset_text(reset_ns)));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Python layer

/// A request's compiled rules (see `gatecore._core.pyi`).
#[pyclass(name = "RulePlan", module = "gatecore._core", frozen)]
pub struct PyRulePlan {
    table: Py<PyCounterTable>,
    rules: Vec<PlanRule>,
}

/// The outcome of `RulePlan.admit` (see `gatecore._core.pyi`).
#[pyclass(name = "Admission", module = "gatecore._core", frozen)]
pub struct PyAdmission {
    inner: Admission,
}

#[pymethods]
impl PyAdmission {
    #[getter]
    fn refused(&self) -> i64 {
        self.inner.refused
    }

    #[getter]
    fn retry_ns(&self) -> Option<u64> {
        (self.inner.retry_ns != NEVER).then_some(self.inner.retry_ns)
    }

    #[getter]
    fn reserved_micros(&self) -> Option<u64> {
        self.inner.reserved_micros
    }
}

#[pymethods]
impl PyRulePlan {
    /// `rules`: (slot, kind, limit, soft, alert_slot, tag) per rule, in admission order.
    #[new]
    #[allow(clippy::type_complexity)]
    fn new(
        table: Py<PyCounterTable>,
        rules: Vec<(usize, u8, u64, bool, usize, u16)>,
    ) -> PyResult<Self> {
        let slots = table.get().table().slots;
        let rules = rules
            .into_iter()
            .map(|(slot, kind, limit, soft, alert_slot, tag)| {
                if slot >= slots || alert_slot >= slots || kind > BUDGET {
                    return Err(PyValueError::new_err("rule slot or kind out of range"));
                }
                Ok(PlanRule {
                    slot,
                    kind,
                    limit,
                    soft,
                    alert_slot,
                    tag,
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyRulePlan { table, rules })
    }

    #[pyo3(signature = (now_ns, tokens, micros, min_tokens, min_micros = 0))]
    fn admit(
        &self,
        now_ns: u64,
        tokens: u64,
        micros: u64,
        min_tokens: u64,
        min_micros: u64,
    ) -> PyAdmission {
        let table = self.table.get().table();
        PyAdmission {
            inner: admit(
                table,
                &self.rules,
                now_ns,
                tokens,
                micros,
                min_tokens,
                min_micros,
            ),
        }
    }

    fn settle(
        &self,
        admission: &PyAdmission,
        now_ns: u64,
        tokens: u64,
        micros: u64,
    ) -> PyResult<Vec<(usize, u64)>> {
        if admission.inner.refused >= 0 || admission.inner.taken.len() != self.rules.len() {
            return Err(PyValueError::new_err(
                "settle needs an admission of this plan",
            ));
        }
        let table = self.table.get().table();
        Ok(settle(
            table,
            &self.rules,
            &admission.inner,
            now_ns,
            tokens,
            micros,
        ))
    }

    fn headers(&self, admission: &PyAdmission) -> Vec<(&'static str, String)> {
        headers(&self.rules, &admission.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(table: &CounterTable, name: &str, kind: u8, limit: u64) -> PlanRule {
        PlanRule {
            slot: table.slot(name.as_bytes()).unwrap(),
            kind,
            limit,
            soft: false,
            alert_slot: table.slot(format!("alert:{name}").as_bytes()).unwrap(),
            tag: 0,
        }
    }

    #[test]
    fn admits_all_or_nothing() {
        let table = CounterTable::anonymous(64).unwrap();
        let rules = vec![
            rule(&table, "rpm", RPM, 10),
            rule(&table, "par", PARALLEL, 1),
            rule(&table, "usd", BUDGET, 100),
        ];
        let first = admit(&table, &rules, 1, 0, 60, 0, 0);
        assert_eq!(first.refused, -1);
        assert_eq!(first.taken, vec![1, 1, 60]);
        assert_eq!(first.tightest[0], Some((0, 9, 6_000_000_000)));
        // The slot is busy: refused at rule 1, and rule 0's request is given back.
        let second = admit(&table, &rules, 1, 0, 60, 0, 0);
        assert_eq!(second.refused, 1);
        let third = {
            settle(&table, &rules, &first, 2, 0, 50);
            // 50 spent: 60 more would pass the limit, 50 fit exactly.
            assert_eq!(admit(&table, &rules, 2, 0, 60, 0, 0).refused, 2);
            admit(&table, &rules, 2, 0, 50, 0, 0)
        };
        assert_eq!(third.refused, -1);
        assert_eq!(third.tightest[0].map(|t| t.1), Some(8)); // the refused admissions gave theirs back
        assert_eq!(
            table
                .cell(rules[2].slot)
                .load(std::sync::atomic::Ordering::Acquire),
            100
        );
    }

    #[test]
    fn tokens_take_up_to_the_estimate_and_settle_to_the_real_use() {
        let table = CounterTable::anonymous(64).unwrap();
        let rules = vec![rule(&table, "tpm", TPM, 100)];
        let a = admit(&table, &rules, 0, 80, 0, 0, 0);
        assert_eq!(a.taken, vec![80]);
        // 20 left: a request needing at least 10 of an estimate of 50 gets the 20.
        let b = admit(&table, &rules, 0, 50, 0, 10, 0);
        assert_eq!((b.refused, b.taken.clone()), (-1, vec![20]));
        let c = admit(&table, &rules, 0, 50, 0, 10, 0);
        assert_eq!(c.refused, 0);
        assert!(c.retry_ns > 0 && c.retry_ns != NEVER);
        settle(&table, &rules, &a, 0, 30, 0); // 50 tokens back
        assert_eq!(admit(&table, &rules, 0, 50, 0, 0, 0).refused, -1);
        assert_eq!(admit(&table, &rules, 0, 101, 0, 0, 0).retry_ns, NEVER);
    }

    #[test]
    fn budgets_alert_once_when_crossed() {
        let table = CounterTable::anonymous(64).unwrap();
        let rules = vec![rule(&table, "usd", BUDGET, 100)];
        let a = admit(&table, &rules, 0, 0, 10, 0, 0);
        assert_eq!(settle(&table, &rules, &a, 0, 0, 150), vec![(0, 150)]);
        assert_eq!(admit(&table, &rules, 0, 0, 10, 0, 0).refused, 0);
        let soft = vec![PlanRule {
            soft: true,
            ..rules[0].clone()
        }];
        let b = admit(&table, &soft, 0, 0, 10, 0, 0);
        assert_eq!(b.refused, -1);
        assert!(settle(&table, &soft, &b, 0, 0, 10).is_empty()); // already reported this period
    }

    #[test]
    fn hard_budgets_reserve_only_what_fits() {
        let table = CounterTable::anonymous(64).unwrap();
        let rules = vec![rule(&table, "usd", BUDGET, 1_000_000)];
        // Exact reservations: the second does not fit beside the first.
        let a = admit(&table, &rules, 0, 0, 600_000, 0, 0);
        assert_eq!((a.refused, a.reserved_micros), (-1, Some(600_000)));
        assert_eq!(admit(&table, &rules, 0, 0, 600_000, 0, 0).refused, 0);
        // Up to: takes the 400,000 left, which caps the request's output.
        let b = admit(&table, &rules, 0, 0, 600_000, 0, 1);
        assert_eq!(
            (b.refused, b.taken.clone(), b.reserved_micros),
            (-1, vec![400_000], Some(400_000))
        );
        assert_eq!(admit(&table, &rules, 0, 0, 600_000, 0, 1).refused, 0);
        settle(&table, &rules, &a, 0, 0, 100_000);
        assert_eq!(
            table
                .cell(rules[0].slot)
                .load(std::sync::atomic::Ordering::Acquire),
            500_000
        );
    }

    #[test]
    fn several_hard_budgets_hold_the_least_any_could_give() {
        let table = CounterTable::anonymous(64).unwrap();
        let rules = vec![
            rule(&table, "key", BUDGET, 1_000_000),
            rule(&table, "team", BUDGET, 300_000),
            rule(&table, "org", BUDGET, 500_000),
        ];
        let a = admit(&table, &rules, 0, 0, 800_000, 0, 10);
        assert_eq!(a.refused, -1);
        assert_eq!(a.taken, vec![300_000; 3]);
        assert_eq!(a.reserved_micros, Some(300_000));
        let spent: Vec<u64> = rules
            .iter()
            .map(|r| {
                table
                    .cell(r.slot)
                    .load(std::sync::atomic::Ordering::Acquire)
            })
            .collect();
        assert_eq!(spent, vec![300_000; 3]);
        // The team budget is spent: refused there, and the key's reservation given back.
        let b = admit(&table, &rules, 0, 0, 800_000, 0, 10);
        assert_eq!(b.refused, 1);
        assert_eq!(
            table
                .cell(rules[0].slot)
                .load(std::sync::atomic::Ordering::Acquire),
            300_000
        );
        // No budget rule: nothing reserved.
        let none = admit(&table, &[rule(&table, "rpm", RPM, 5)], 0, 0, 5, 0, 1);
        assert_eq!(none.reserved_micros, None);
    }

    #[test]
    fn formats_resets_like_openai() {
        assert_eq!(reset_text(250_000_000), "250ms");
        assert_eq!(reset_text(6_000_000_000), "6s");
        assert_eq!(reset_text(1_500_000_000), "1.5s");
        assert_eq!(reset_text(90_000_000_000), "1m30s");
        assert_eq!(reset_text(60_250_000_000), "1m0.25s");
        assert_eq!(reset_text(0), "0ms");
    }
}
