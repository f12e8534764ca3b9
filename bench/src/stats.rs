//! Percentiles of latency samples, for the benches' tables.
#![allow(clippy::indexing_slicing)]

use std::time::Duration;

/// The `p` percentile (0.0..=1.0) of `v`, nearest rank; zero for no samples. Sorts `v`.
pub fn pct(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}
