//! `gatecore._core`: the Rust half of gatecore. This file only registers; each capability
//! lives in its own module as a pure-Rust core plus a thin Python layer.

use pyo3::prelude::*;

pub mod admission;
pub mod budget_cells;
pub mod cache_key;
pub mod chunk_scan;
pub mod counters;
pub mod event_stream;
pub mod hf_tokens;
pub mod http1;
pub mod json_edit;
pub mod json_lines;
pub mod json_scan;
pub mod otlp_spans;
pub mod pii;
pub mod prompt_tokens;
pub mod protobuf;
pub mod ratelimit;
pub mod request_histograms;
pub mod request_metrics;
pub mod share_clock;
pub mod sqlite_rows;
pub mod sse;
pub mod stage_histogram;
pub mod tokens;

#[cfg(test)]
mod fuzz_tests;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<http1::PyHttp1Parser>()?;
    m.add_class::<sse::PySseRelay>()?;
    m.add_class::<event_stream::PyEventStreamDecoder>()?;
    m.add_class::<counters::PyCounterTable>()?;
    m.add_class::<admission::PyRulePlan>()?;
    m.add_class::<admission::PyAdmission>()?;
    m.add_class::<request_metrics::PyRequestMetrics>()?;
    m.add_class::<json_lines::PyJsonLines>()?;
    m.add_class::<otlp_spans::PyOtlpSpans>()?;
    m.add_class::<sqlite_rows::PySqliteRowWriter>()?;
    m.add_class::<pii::py::PyPiiScanner>()?;
    m.add_class::<hf_tokens::PyHfTokenizer>()?;
    m.add_function(wrap_pyfunction!(tokens::count_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(cache_key::cache_key, m)?)?;
    m.add_function(wrap_pyfunction!(prompt_tokens::count_prompt_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(json_edit::replace_json_string_field, m)?)?;
    m.add_function(wrap_pyfunction!(json_edit::insert_json_member, m)?)?;
    m.add_function(wrap_pyfunction!(otlp_spans::traceparent_line, m)?)?;
    Ok(())
}
