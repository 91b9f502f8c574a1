//! The configuration of a retry layer: [`RetryPolicy`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::backoff::Backoff;
use crate::before_retry::BeforeRetryFn;
use crate::classify::{default_decision, Decision, Outcome, RequestInfo};
use crate::idempotency::Idempotency;

/// The default attempt limit: 4 attempts, that is 3 retries.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
/// The default longest `Retry-After` the layer waits for: 60 s.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The default number of bytes of a discarded response body read so the connection can be reused.
pub const DEFAULT_DRAIN_LIMIT: u64 = 64 * 1024;
/// The default idempotency key header: `Idempotency-Key`, as in the IETF draft.
pub const DEFAULT_IDEMPOTENCY_HEADER: HeaderName = HeaderName::from_static("idempotency-key");

type ClassifyFn = dyn Fn(&RequestInfo<'_>, &Outcome<'_>) -> Option<Decision> + Send + Sync;

/// What to retry, how often, and how long to wait: the configuration of a
/// [`RetryLayer`](crate::RetryLayer).
///
/// Every setting has a default that follows the vendor guidance this crate is built from; see the
/// crate documentation for the table.
///
/// ```
/// use std::time::Duration;
/// use tower_http_retry::{backoff::Backoff, RetryPolicy};
///
/// let policy = RetryPolicy::default()
///     .max_attempts(5)
///     .backoff(Backoff::exponential(Duration::from_millis(200)).max_delay(Duration::from_secs(20)))
///     .max_retry_after(Duration::from_secs(30))
///     .attempt_timeout(Duration::from_secs(10))
///     .deadline(Duration::from_secs(60));
/// # let _ = policy;
/// ```
#[derive(Clone)]
pub struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) max_retry_after: Duration,
    pub(crate) deadline: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) drain_limit: u64,
    pub(crate) idempotency_header: HeaderName,
    pub(crate) idempotency: Idempotency,
    pub(crate) before_retry: Option<Arc<BeforeRetryFn>>,
    classify: Option<Arc<ClassifyFn>>,
    randomness: Randomness,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: Backoff::default(),
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            deadline: None,
            attempt_timeout: None,
            drain_limit: DEFAULT_DRAIN_LIMIT,
            idempotency_header: DEFAULT_IDEMPOTENCY_HEADER,
            idempotency: Idempotency::default(),
            before_retry: None,
            classify: None,
            randomness: Randomness::Os,
        }
    }
}

impl RetryPolicy {
    /// The default policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes at most `attempts` attempts in all, the first included (0 is taken as 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Waits between attempts by this backoff.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Waits for a response's `Retry-After` only up to `max`; past it, or past the remaining deadline,
    /// the response is returned at once and [`RetryHistory::retry_after`](crate::RetryHistory::retry_after)
    /// tells the caller what the server asked for.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// Ends the whole call, attempts and waits included, after `deadline`: no wait is started that
    /// would end past it, and an attempt in flight when it passes is canceled.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Cancels an attempt whose response head has not arrived within `timeout`, and retries it if the
    /// request is idempotent. The response body is not covered: it belongs to the caller.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Reads at most `bytes` of a discarded response body before retrying, so the connection can be
    /// reused; a longer body is dropped and its connection closed. 0 never reads.
    pub fn drain_limit(mut self, bytes: u64) -> Self {
        self.drain_limit = bytes;
        self
    }

    /// Recognises `header` as the idempotency key: a request carrying it counts as idempotent. It is
    /// also the header [`inject_idempotency_keys`](Self::inject_idempotency_keys) sets.
    pub fn idempotency_header(mut self, header: HeaderName) -> Self {
        self.idempotency_header = header;
        self
    }

    /// Decides what is retryable with `hook` first: `Some` is the decision, `None` falls back to the
    /// default table ([`classify::default_decision`](crate::classify::default_decision)).
    ///
    /// ```
    /// use tower_http_retry::classify::{Decision, Outcome, RetryClass};
    /// use tower_http_retry::RetryPolicy;
    ///
    /// // This API also answers 520 when an upstream is briefly away.
    /// let policy = RetryPolicy::default().classify_with(|_request, outcome| match outcome {
    ///     Outcome::Response { status, .. } if status.as_u16() == 520 => {
    ///         Some(Decision::Retry(RetryClass::Transient))
    ///     }
    ///     _ => None,
    /// });
    /// # let _ = policy;
    /// ```
    pub fn classify_with<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RequestInfo<'_>, &Outcome<'_>) -> Option<Decision> + Send + Sync + 'static,
    {
        self.classify = Some(Arc::new(hook));
        self
    }

    /// Draws jitter from sequences derived from `seed`, for reproducible tests: the n-th request of
    /// this policy (and its clones) to need a wait gets the n-th derived sequence; requests that never
    /// retry draw nothing. Without a seed each request that retries seeds its own generator from the
    /// thread-local cryptographic generator.
    pub fn seed(mut self, seed: u64) -> Self {
        self.randomness = Randomness::Seeded {
            seed,
            next: Arc::new(AtomicU64::new(0)),
        };
        self
    }

    pub(crate) fn decide(&self, request: &RequestInfo<'_>, outcome: &Outcome<'_>) -> Decision {
        self.classify
            .as_ref()
            .and_then(|hook| hook(request, outcome))
            .unwrap_or_else(|| default_decision(request, outcome))
    }

    /// A random source for one request, never shared with another.
    pub(crate) fn rng(&self) -> SmallRng {
        match &self.randomness {
            Randomness::Os => SmallRng::from_rng(&mut rand::rng()),
            Randomness::Seeded { seed, next } => {
                let n = next.fetch_add(1, Ordering::Relaxed);
                // seed_from_u64 scrambles its input, so neighbouring values give unrelated sequences.
                SmallRng::seed_from_u64(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            }
        }
    }
}

#[derive(Clone)]
enum Randomness {
    Os,
    Seeded { seed: u64, next: Arc<AtomicU64> },
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("max_retry_after", &self.max_retry_after)
            .field("deadline", &self.deadline)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("drain_limit", &self.drain_limit)
            .field("idempotency_header", &self.idempotency_header)
            .field("idempotency", &self.idempotency)
            .field("before_retry_hook", &self.before_retry.is_some())
            .field("classify_hook", &self.classify.is_some())
            .field(
                "seeded",
                &matches!(self.randomness, Randomness::Seeded { .. }),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn two_requests_never_share_a_sequence() {
        for policy in [RetryPolicy::default(), RetryPolicy::default().seed(42)] {
            let a: Vec<u64> = (0..8)
                .map({
                    let mut r = policy.rng();
                    move |_| r.random()
                })
                .collect();
            let b: Vec<u64> = (0..8)
                .map({
                    let mut r = policy.rng();
                    move |_| r.random()
                })
                .collect();
            assert_ne!(a, b);
        }
    }

    #[test]
    fn a_seed_reproduces_the_same_sequences() {
        let draw =
            |policy: &RetryPolicy| -> Vec<u64> { (0..4).map(|_| policy.rng().random()).collect() };
        assert_eq!(
            draw(&RetryPolicy::new().seed(7)),
            draw(&RetryPolicy::new().seed(7))
        );
        assert_ne!(
            draw(&RetryPolicy::new().seed(7)),
            draw(&RetryPolicy::new().seed(8))
        );
    }

    #[test]
    fn zero_attempts_means_one() {
        assert_eq!(RetryPolicy::new().max_attempts(0).max_attempts, 1);
    }
}
