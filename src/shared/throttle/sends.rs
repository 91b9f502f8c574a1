//! The rate calls are sent at, measured before any scope is throttled, so that a scope engaged by
//! a throttling answer starts near the rate it was being sent at, not from nothing. A relaxed
//! atomic add per call; the clock is read once every [`PERIOD`] calls.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

/// Calls between two marks of the clock, and the fewest a measure is made of.
const PERIOD: u64 = 32;

pub(crate) struct Sends {
    calls: AtomicU64,
    /// The two latest marks: calls counted, and when.
    marks: Mutex<[(u64, Instant); 2]>,
}

impl Sends {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            calls: AtomicU64::new(0),
            marks: Mutex::new([(0, now); 2]),
        }
    }

    #[inline]
    pub(crate) fn count(&self) {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(PERIOD) {
            self.mark(n);
        }
    }

    #[cold]
    #[inline(never)]
    fn mark(&self, n: u64) {
        let now = Instant::now();
        let mut marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        if marks[1].0 < n {
            marks[0] = marks[1];
            marks[1] = (n, now);
        }
    }

    /// Calls per second since the older mark, when at least [`PERIOD`] calls were counted since.
    pub(crate) fn rate(&self, now: Instant) -> Option<f64> {
        let n = self.calls.load(Ordering::Relaxed);
        let marks = *self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        let (calls, at) = marks[0];
        let span = now.saturating_duration_since(at).as_secs_f64();
        let counted = n.saturating_sub(calls);
        (counted >= PERIOD && span > 0.0).then(|| counted as f64 / span)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_rate_is_measured_over_the_latest_calls_only() {
        let sends = Sends::new(Instant::now());
        assert_eq!(sends.rate(Instant::now()), None, "nothing measured");
        // 1 call a second for 100 s, then 100 a second for 1 s.
        for _ in 0..100 {
            tokio::time::advance(Duration::from_secs(1)).await;
            sends.count();
        }
        let slow = sends.rate(Instant::now()).unwrap();
        assert!((0.9..=1.1).contains(&slow), "{slow}");
        for _ in 0..100 {
            tokio::time::advance(Duration::from_millis(10)).await;
            sends.count();
        }
        let fast = sends.rate(Instant::now()).unwrap();
        assert!((60.0..=110.0).contains(&fast), "{fast}");
    }
}
