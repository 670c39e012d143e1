//! Latency statistics: percentiles, summaries, empirical CDFs and the
//! two-sample Kolmogorov-Smirnov distance.

use serde::{Deserialize, Serialize};

/// The `q`-quantile (0..=1) of ascending `sorted`, linearly interpolated
/// between order statistics (Hyndman-Fan type 7). `NaN` when empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The upper median of `v` (its element `len / 2` once sorted; `v` is
/// sorted in place); 0 for none.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Latency summary of a set of requests. Undefined values (no requests)
/// are `NaN`, written `null` in JSON and read back as `NaN`; a field left
/// out reads as that of no requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    /// Number of requests.
    pub requests: u64,
    /// Mean latency, seconds.
    #[serde(deserialize_with = "nan_if_null")]
    pub mean_s: f64,
    /// Median latency, seconds.
    #[serde(deserialize_with = "nan_if_null")]
    pub p50_s: f64,
    /// 90th percentile, seconds.
    #[serde(deserialize_with = "nan_if_null")]
    pub p90_s: f64,
    /// 99th percentile, seconds.
    #[serde(deserialize_with = "nan_if_null")]
    pub p99_s: f64,
    /// Largest latency, seconds.
    #[serde(deserialize_with = "nan_if_null")]
    pub max_s: f64,
    /// Fraction of requests within their SLO (1.0 when none has an SLO).
    #[serde(deserialize_with = "nan_if_null")]
    pub slo_attainment: f64,
}

/// Reads a number, or `null` (how JSON writes `NaN`) as `NaN`.
pub fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl Default for Summary {
    /// The summary of no requests.
    fn default() -> Summary {
        Summary::of_sorted(&[], 0)
    }
}

impl Summary {
    /// Summarises `latencies` (any order); `within_slo` counts the requests that met their SLO.
    pub fn of(latencies: &[f64], within_slo: u64) -> Summary {
        let mut sorted = latencies.to_vec();
        sorted.sort_unstable_by(f64::total_cmp);
        Summary::of_sorted(&sorted, within_slo)
    }

    /// [`Summary::of`] for latencies already in ascending order (no copy).
    pub fn of_sorted(sorted: &[f64], within_slo: u64) -> Summary {
        let n = sorted.len();
        Summary {
            requests: n as u64,
            mean_s: if n == 0 {
                f64::NAN
            } else {
                sorted.iter().sum::<f64>() / n as f64
            },
            p50_s: quantile(sorted, 0.50),
            p90_s: quantile(sorted, 0.90),
            p99_s: quantile(sorted, 0.99),
            max_s: sorted.last().copied().unwrap_or(f64::NAN),
            slo_attainment: if n == 0 {
                f64::NAN
            } else {
                within_slo as f64 / n as f64
            },
        }
    }
}

/// Points `(latency, fraction <= latency)` of the empirical CDF of ascending
/// `sorted`, thinned to at most `max_points` for plotting (the last point is kept).
pub fn ecdf_points(sorted: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let step = n.div_ceil(max_points.max(1)).max(1);
    let mut pts: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (sorted[i], (i + 1) as f64 / n as f64))
        .collect();
    if pts.last().map(|p| p.1) != Some(1.0) {
        pts.push((sorted[n - 1], 1.0));
    }
    pts
}

/// Two-sample Kolmogorov-Smirnov distance: the largest gap between the
/// empirical CDFs of `a` and `b` (both ascending). 1.0 if either is empty.
pub fn ks_distance(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 5.0);
        assert_eq!(quantile(&v, 0.9), 4.6);
    }

    #[test]
    fn summary_of_known_values() {
        let s = Summary::of(&[3.0, 1.0, 2.0, 4.0], 3);
        assert_eq!(s.requests, 4);
        assert_eq!(s.mean_s, 2.5);
        assert_eq!(s.p50_s, 2.5);
        assert_eq!(s.max_s, 4.0);
        assert_eq!(s.slo_attainment, 0.75);
    }

    #[test]
    fn upper_median() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 3.0);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn summary_json_round_trip_keeps_nan() {
        let s = Summary::of(&[], 0);
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains("\"mean_s\":null"), "{text}");
        let back: Summary = serde_json::from_str(&text).unwrap();
        assert!(back.mean_s.is_nan() && back.requests == 0);
        let one: Summary = serde_json::from_str(r#"{"slo_attainment": 0.5}"#).unwrap();
        assert_eq!(one.slo_attainment, 0.5);
        assert!(one.p99_s.is_nan());
    }

    #[test]
    fn ks_distance_known_answers() {
        assert_eq!(ks_distance(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0.0);
        assert_eq!(ks_distance(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
        // a = {1,2,3,4}, b = {3,4,5,6}: at x = 2, F_a = 0.5, F_b = 0.
        assert_eq!(
            ks_distance(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]),
            0.5
        );
    }

    #[test]
    fn ecdf_ends_at_one() {
        let v: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        let p = ecdf_points(&v, 100);
        assert!(p.len() <= 101);
        assert_eq!(p.last().unwrap(), &(999.0, 1.0));
    }
}
