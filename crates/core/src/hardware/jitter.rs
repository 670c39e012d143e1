//! Run-to-run variation of a profile's times and the host's stalls
//! (`jitter:`), applied by `sim`.

use serde::{Deserialize, Serialize};

/// Run-to-run variation of copy and compute times, as coefficients of
/// variation: the simulator draws each copy's and each compute task's time
/// as its cost-model time times a seeded log-normal factor of mean 1 and
/// this CV. Zero (the default) keeps the simulation deterministic in time.
///
/// Besides, the host thread that issues every pass stalls now and then
/// (0.3-1.5% of warm passes on an H100 ran more than 1 ms over their
/// median, up to 6 ms, `results/validation/host_stalls.md`): stalls arrive
/// at `host_stall_rate_per_s` per second of host issuing, each of a size
/// drawn from the quantiles `host_stall_ms`. None by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jitter {
    /// CV of a host-to-device copy's time.
    #[serde(default)]
    pub copy_cv: f64,
    /// CV of a compute task's time.
    #[serde(default)]
    pub compute_cv: f64,
    /// Host stalls per second of host time spent issuing passes.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub host_stall_rate_per_s: f64,
    /// Stall sizes, milliseconds: quantiles at evenly spaced probabilities
    /// from 0 to 1 (at least two, non-decreasing), sampled by linear
    /// interpolation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_stall_ms: Vec<f64>,
}

fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
}

impl Jitter {
    /// True when both CVs are zero and the host never stalls.
    pub fn is_none(&self) -> bool {
        self.copy_cv == 0.0 && self.compute_cv == 0.0 && !self.host_stalls()
    }

    /// True when the profile has host stalls.
    pub fn host_stalls(&self) -> bool {
        self.host_stall_rate_per_s > 0.0 && self.host_stall_ms.len() >= 2
    }

    /// Checks the host-stall fields: the message for a bad one, naming it.
    pub(super) fn check_host_stalls(&self) -> Result<(), (&'static str, String)> {
        let r = self.host_stall_rate_per_s;
        if !(r.is_finite() && r >= 0.0) {
            return Err((
                "jitter.host_stall_rate_per_s",
                format!("expected a rate of 0 or more per second, got {r}"),
            ));
        }
        let q = &self.host_stall_ms;
        let bad =
            q.iter().any(|x| !(x.is_finite() && *x >= 0.0)) || q.windows(2).any(|w| w[1] < w[0]);
        if bad || q.len() == 1 || (r > 0.0 && q.is_empty()) {
            return Err((
                "jitter.host_stall_ms",
                format!(
                    "expected at least two non-negative, non-decreasing quantiles (ms) where host_stall_rate_per_s is set, got {q:?}"
                ),
            ));
        }
        Ok(())
    }
}
