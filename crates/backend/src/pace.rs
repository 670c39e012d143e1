//! Pacing the host thread: waiting for an instant by sleeping while it is
//! far and spinning at the end, so the wake-up is on time (`replay`'s
//! dispatcher and `replay calibrate`'s idle gaps wait the same way).

use std::time::{Duration, Instant};

/// With nothing in flight, the dispatcher sleeps when the next arrival is
/// at least this far away...
pub const SLEEP_MIN: Duration = Duration::from_micros(1500);
/// ...until this long before it, then spins.
pub const SLEEP_SLACK: Duration = Duration::from_micros(1000);

/// Waits until `due` as replay's dispatcher does when it has nothing in
/// flight: sleeps until [`SLEEP_SLACK`] before it (when at
/// least [`SLEEP_MIN`] away), then spins.
pub fn idle_until(due: Instant) {
    let wait = due.saturating_duration_since(Instant::now());
    if wait > SLEEP_MIN {
        std::thread::sleep(wait - SLEEP_SLACK);
    }
    while Instant::now() < due {
        std::hint::spin_loop();
    }
}
