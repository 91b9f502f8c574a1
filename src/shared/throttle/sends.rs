//! The rate calls are sent at, measured before any scope is throttled, so that a scope engaged by
//! a throttling answer starts near the rate it was being sent at, not from nothing. A relaxed
//! atomic add per call; the clock is read at the first call and once every [`PERIOD`] calls. Measured over at least
//! [`SPAN`]: a burst sent at once has no rate to start from (slow start finds one).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Calls between two looks at the clock, and the fewest a measure is made of.
const PERIOD: u64 = 32;
/// The shortest span a measure is made over.
const SPAN: Duration = Duration::from_millis(250);
/// Marks kept, each at least a quarter of [`SPAN`] after the one before: about half a second of
/// history, or more while calls are sparse.
const MARKS: usize = 8;

pub(crate) struct Sends {
    calls: AtomicU64,
    /// Calls counted, and when: a ring of the latest marks, oldest first.
    marks: Mutex<VecDeque<(u64, Instant)>>,
}

impl Sends {
    pub(crate) fn new() -> Self {
        Self {
            calls: AtomicU64::new(0),
            marks: Mutex::new(VecDeque::with_capacity(MARKS)),
        }
    }

    #[inline]
    pub(crate) fn count(&self) {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        // The first call is marked too: a client a quarter second in has a rate.
        if n.is_multiple_of(PERIOD) || n == 1 {
            self.mark(n);
        }
    }

    #[cold]
    #[inline(never)]
    fn mark(&self, n: u64) {
        let now = Instant::now();
        let mut marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        let spaced = marks
            .back()
            .is_none_or(|&(_, at)| now.saturating_duration_since(at) >= SPAN / 4);
        if spaced {
            if marks.len() == MARKS {
                marks.pop_front();
            }
            marks.push_back((n, now));
        }
    }

    /// Calls per second since the latest mark at least [`SPAN`] old with at least [`PERIOD`]
    /// calls counted since. A burst sent at once has no such mark: no rate.
    pub(crate) fn rate(&self, now: Instant) -> Option<f64> {
        let n = self.calls.load(Ordering::Relaxed);
        let marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        let &(calls, at) = marks.iter().rev().find(|&&(calls, at)| {
            now.saturating_duration_since(at) >= SPAN && n.saturating_sub(calls) >= PERIOD
        })?;
        let span = now.saturating_duration_since(at);
        Some(n.saturating_sub(calls) as f64 / span.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_rate_is_measured_over_the_latest_calls_only() {
        let sends = Sends::new();
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

    #[tokio::test(start_paused = true)]
    async fn a_burst_sent_at_once_has_no_rate() {
        let sends = Sends::new();
        for _ in 0..500 {
            sends.count();
        }
        assert_eq!(sends.rate(Instant::now()), None);
        // A span later, they were sent over that span.
        tokio::time::advance(SPAN).await;
        let rate = sends.rate(Instant::now()).unwrap();
        assert!((rate - 499.0 / SPAN.as_secs_f64()).abs() < 1.0, "{rate}");
    }
}
