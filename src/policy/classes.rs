//! Per-class settings: throttling and transient outcomes each have their own backoff (with its cap),
//! attempt limit and, optionally, a limit on their own retries.
//!
//! | class | outcomes | backoff | cap | attempts | where it comes from |
//! |---|---|---|---|---|---|
//! | throttling | 429, 409 while a keyed request is in flight | exponential from 1 s, doubling, equal jitter (0.5–1 s, 1–2 s, ...) | 30 s | 4 | "429: initial wait of 500–1000 ms doubles to 30–60 s; cap retries at 3–5 attempts" (Supertone); "1s, 2s, 4s" (Memsy); "wait at least 1s" (QuillAI) |
//! | transient | 500, 502, 503, 504, 408, transport failures, timeouts | exponential from 300 ms, doubling, full jitter | 30 s | 4 | "slightly more aggressive (300 ms initial) since they usually clear quickly" (Supertone); 30 s cap (QuillAI) |
//!
//! Throttling uses equal jitter so a rate limiter that has just said no is not asked again a few
//! milliseconds later; transient failures use full jitter, which spreads a fleet best.
//! A `Retry-After`, or the reset of a spent rate limit, is a floor under either (or replaces it:
//! [`RetryAfterMode::Exact`](crate::retry_after::RetryAfterMode::Exact)).
//!
//! The attempt limit ([`RetryPolicy::max_attempts_for`]) counts every attempt of the call, whatever
//! failed before. A retry limit ([`RetryPolicy::max_retries_for`], none by default) counts only the
//! class's own retries, so the two classes can be kept apart: a 429 answered with one deliberate pause,
//! outside a transient loop of five exponential retries that it neither advances nor spends.

use std::time::Duration;

use crate::classify::RetryClass;
use crate::wait::backoff::{Backoff, Jitter};

/// The default attempt limit: 4 attempts, that is 3 retries.
pub(crate) const DEFAULT_MAX_ATTEMPTS: u32 = 4;

/// The default first throttling delay: 1 s.
pub(crate) const DEFAULT_THROTTLING_BASE: Duration = Duration::from_secs(1);
/// The default first transient delay: 300 ms.
pub(crate) const DEFAULT_TRANSIENT_BASE: Duration = Duration::from_millis(300);

/// What one class of retries is allowed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClassLimits {
    pub(crate) backoff: Backoff,
    /// Attempts in all, the first included, when the latest outcome is of this class.
    pub(crate) max_attempts: u32,
    /// Retries of this class in one call, the other class's not counted.
    pub(crate) max_retries: u32,
}

/// The limits of both classes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Classes {
    throttling: ClassLimits,
    transient: ClassLimits,
}

impl Default for Classes {
    fn default() -> Self {
        Self {
            throttling: ClassLimits {
                backoff: Backoff::exponential(DEFAULT_THROTTLING_BASE).jitter(Jitter::Equal),
                max_attempts: DEFAULT_MAX_ATTEMPTS,
                max_retries: u32::MAX,
            },
            transient: ClassLimits {
                backoff: Backoff::exponential(DEFAULT_TRANSIENT_BASE),
                max_attempts: DEFAULT_MAX_ATTEMPTS,
                max_retries: u32::MAX,
            },
        }
    }
}

impl Classes {
    pub(crate) fn get(&self, class: RetryClass) -> &ClassLimits {
        match class {
            RetryClass::Throttling => &self.throttling,
            RetryClass::Transient => &self.transient,
        }
    }

    pub(crate) fn get_mut(&mut self, class: RetryClass) -> &mut ClassLimits {
        match class {
            RetryClass::Throttling => &mut self.throttling,
            RetryClass::Transient => &mut self.transient,
        }
    }

    pub(crate) fn both_mut(&mut self) -> [&mut ClassLimits; 2] {
        [&mut self.throttling, &mut self.transient]
    }
}
