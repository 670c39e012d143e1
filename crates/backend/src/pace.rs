//! Pacing the host thread: waiting for an instant by sleeping while it is
//! far and spinning at the end, so the wake-up is on time, or by spinning
//! throughout (`replay`'s dispatcher and `replay calibrate`'s idle gaps wait
//! the same way, as `--idle` says).

use std::time::{Duration, Instant};

/// With nothing in flight, the dispatcher sleeps when the next arrival is
/// at least this far away...
pub const SLEEP_MIN: Duration = Duration::from_micros(1500);
/// ...until this long before it, then spins.
pub const SLEEP_SLACK: Duration = Duration::from_micros(1000);

/// How the host thread waits with nothing in flight (`--idle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdleWait {
    /// Sleeps until [`SLEEP_SLACK`] before the instant (when at least
    /// [`SLEEP_MIN`] away), then spins: the CPU is free between requests.
    #[default]
    Sleep,
    /// Spins throughout, keeping its CPU busy (and, on a virtual machine,
    /// its vCPU from halting) between requests.
    Spin,
}

impl IdleWait {
    /// Parses `sleep` or `spin` (the flag's values).
    pub fn from_name(s: &str) -> Result<Self, String> {
        match s {
            "sleep" => Ok(Self::Sleep),
            "spin" => Ok(Self::Spin),
            _ => Err(format!("expected `sleep` or `spin`, got `{s}`")),
        }
    }

    /// The flag's value naming this mode.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sleep => "sleep",
            Self::Spin => "spin",
        }
    }

    /// Sleeps for the part of the wait until `due` that this mode sleeps
    /// (none when spinning, or when `due` is under [`SLEEP_MIN`] away);
    /// the caller spins (or polls) for the rest.
    pub fn doze_until(self, due: Instant) {
        let wait = due.saturating_duration_since(Instant::now());
        if self == Self::Sleep && wait > SLEEP_MIN {
            std::thread::sleep(wait - SLEEP_SLACK);
        }
    }
}

/// Waits until `due` as replay's dispatcher does when it has nothing in
/// flight: [`IdleWait::doze_until`], then spins.
pub fn idle_until(due: Instant, how: IdleWait) {
    how.doze_until(due);
    while Instant::now() < due {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_refused() {
        for w in [IdleWait::Sleep, IdleWait::Spin] {
            assert_eq!(IdleWait::from_name(w.name()), Ok(w));
        }
        let e = IdleWait::from_name("nap").unwrap_err();
        assert!(e.contains("`nap`"), "{e}");
    }

    #[test]
    fn both_modes_wait_until_due() {
        for w in [IdleWait::Sleep, IdleWait::Spin] {
            let due = Instant::now() + Duration::from_millis(3);
            idle_until(due, w);
            assert!(Instant::now() >= due);
        }
    }
}
