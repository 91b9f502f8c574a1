//! The store's clock as one process reads it: the offset between the store's time (µs) and
//! tokio's, from the store's answers.
//!
//! An answer says the store's time when the store ran the exchange and arrives some time later.
//! Taking the latest answer's time as "now" puts the store's clock behind by that answer's
//! transit, which varies: an answer delayed 4 ms (a busy core, a busy Redis) would map the slots
//! it leased 4 ms late, and a slot used 4 ms late crowds the next process's slot (a limiter with
//! no burst refuses it). So the estimate is the quickest answer among the recent ones, as NTP
//! does: every answer is late by its transit, never early.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Answers the estimate is taken from: a few seconds' worth, so that the clocks' drift (tokio's
/// is monotonic, the store's may be slewed) stays far under a millisecond within it.
const SAMPLES: usize = 16;

/// One process's reading of the store's clock.
#[derive(Debug)]
pub(crate) struct StoreClock {
    /// The instant offsets count from.
    base: Instant,
    /// The store's time minus tokio's (from `base`), in µs, of the recent answers.
    offsets: VecDeque<f64>,
    /// The largest of them: the answer that took the least time to arrive.
    offset: f64,
    /// How late an answer may be before its time is taken as the store's clock having stepped
    /// (no answer takes longer than the store's timeout).
    step: f64,
}

impl StoreClock {
    /// No answer yet; an answer later than `patience` means the store's clock stepped.
    pub(crate) fn new(now: Instant, patience: Duration) -> Self {
        Self {
            base: now,
            offsets: VecDeque::with_capacity(SAMPLES),
            offset: 0.0,
            step: patience.as_secs_f64() * 1e6,
        }
    }

    /// Whether the store has answered at least once.
    pub(crate) fn is_set(&self) -> bool {
        !self.offsets.is_empty()
    }

    /// The store answered at `now` with its time `store` (µs).
    pub(crate) fn answered(&mut self, now: Instant, store: f64) {
        let offset = store - self.micros(now);
        // An answer can be late, never early: one far below the estimate, or above it at all by
        // more than a step, means the store's clock moved; start over from it.
        if (offset - self.offset).abs() > self.step && self.is_set() {
            self.offsets.clear();
        }
        if self.offsets.len() == SAMPLES {
            self.offsets.pop_front();
        }
        self.offsets.push_back(offset);
        self.offset = self.offsets.iter().copied().fold(f64::MIN, f64::max);
    }

    /// The store's time `us` on tokio's clock.
    pub(crate) fn local(&self, us: f64) -> Instant {
        let at = us - self.offset;
        let delta = Duration::from_secs_f64((at.abs() / 1e6).min(3.15e7));
        if at >= 0.0 {
            self.base.checked_add(delta).unwrap_or(self.base)
        } else {
            self.base.checked_sub(delta).unwrap_or(self.base)
        }
    }

    /// Tokio's `at` on the store's clock (µs).
    pub(crate) fn store(&self, at: Instant) -> f64 {
        self.micros(at) + self.offset
    }

    /// µs from `base` (negative before it).
    fn micros(&self, at: Instant) -> f64 {
        match at.checked_duration_since(self.base) {
            Some(after) => after.as_secs_f64() * 1e6,
            None => -(self.base.saturating_duration_since(at).as_secs_f64() * 1e6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: f64 = 1_000.0;

    #[test]
    fn a_late_answer_does_not_move_the_clock_the_quickest_one_set() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut clock = StoreClock::new(t0, ms(50));
        // The store's clock is 1,000 s ahead; answers arrive 0.2 ms after it ran.
        let store = |at: Instant| 1e9 + (at - t0).as_secs_f64() * 1e6;
        clock.answered(t0 + ms(10), store(t0 + ms(10)) - 0.2 * MS);
        clock.answered(t0 + ms(20), store(t0 + ms(20)) - 0.2 * MS);
        // This one took 4 ms to arrive.
        clock.answered(t0 + ms(30), store(t0 + ms(30)) - 4.0 * MS);
        let slot = store(t0 + ms(100));
        let off = clock.local(slot).duration_since(t0 + ms(100));
        assert!(off <= Duration::from_micros(250), "{off:?}");
        // And back: within the same 0.2 ms.
        let back = clock.store(t0 + ms(100)) - slot;
        assert!((-250.0..=0.0).contains(&back), "{back}");
    }

    #[test]
    fn a_clock_that_stepped_is_followed_at_once() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut clock = StoreClock::new(t0, ms(50));
        clock.answered(t0 + ms(10), 10.0 * MS);
        // The store's clock stepped back a second: the old offset would map slots 1 s early.
        clock.answered(t0 + ms(20), 20.0 * MS - 1e6);
        let near = |a: Instant, b: Instant| {
            let d = if a > b { a - b } else { b - a };
            d <= Duration::from_micros(1)
        };
        assert!(near(clock.local(30.0 * MS - 1e6), t0 + ms(30)));
        // And forward.
        clock.answered(t0 + ms(40), 40.0 * MS + 1e6);
        assert!(near(clock.local(50.0 * MS + 1e6), t0 + ms(50)));
    }

    #[test]
    fn an_early_time_maps_before_the_base_without_panicking() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut clock = StoreClock::new(t0, Duration::from_millis(50));
        clock.answered(t0, 0.0);
        assert_eq!(clock.local(-2e6), t0 - Duration::from_secs(2));
        assert!(clock.local(-1e18) <= t0);
        assert!(clock.local(1e18) >= t0);
        assert_eq!(clock.store(t0 - Duration::from_secs(1)), -1e6);
    }
}
