//! How long to wait before a retry: the backoff of each class, the shortcuts that give a class its
//! own retries and pace ("five transient retries", "one separate pause for a 429"), and the seed of
//! the jitter.

use crate::classify::RetryClass;
use crate::policy::randomness::Randomness;
use crate::policy::retry_policy::RetryPolicy;
use crate::wait::backoff::Backoff;

/// How long to wait before each retry: the backoff of each class, a class with retries and a pace
/// of its own, and the seed of the jitter.
impl RetryPolicy {
    /// Waits between attempts by this backoff, for both classes of retries;
    /// [`backoff_for`](Self::backoff_for) after it changes one.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::backoff::{Backoff, Jitter};
    /// use tower_http_retry::history::{Wait, WaitReason};
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // Throttled, unavailable, then an answer.
    /// let statuses = Arc::new(Mutex::new([429u16, 503, 200].into_iter()));
    /// let server = service_fn(move |_: Request<String>| {
    ///     let status = statuses.lock().unwrap().next().unwrap();
    ///     let response = Response::builder().status(status).body(String::new());
    ///     async move { Ok::<_, Infallible>(response.unwrap()) }
    /// });
    /// let policy = RetryPolicy::default()
    ///     .backoff(Backoff::constant(Duration::from_secs(2)).jitter(Jitter::None));
    /// let client = Retry::new(server, policy);
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    ///
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// let waits: Vec<_> = history.attempts().iter().filter_map(|a| a.wait).collect();
    /// let two_seconds = Wait {
    ///     duration: Duration::from_secs(2),
    ///     reason: WaitReason::Backoff,
    /// };
    /// // The same backoff for both classes.
    /// assert_eq!(waits, [two_seconds; 2]);
    /// # }
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        for class in self.classes.both_mut() {
            class.backoff = backoff.clone();
        }
        self
    }

    /// Waits by `backoff` (its shape, cap and jitter) before retrying an outcome of `class`. Each class
    /// counts its own retries: the first throttling retry waits the throttling backoff's first delay
    /// even after transient retries.
    ///
    /// | class | default | where it comes from |
    /// |---|---|---|
    /// | [`Throttling`](RetryClass::Throttling) (429, 409 in flight) | exponential from 1 s, doubling, cap 30 s, equal jitter | "429: initial wait of 500–1000 ms doubles to 30–60 s" (Supertone); "1s, 2s, 4s" (Memsy); "wait at least 1s" (QuillAI) |
    /// | [`Transient`](RetryClass::Transient) (5xx, 408, transport) | exponential from 300 ms, doubling, cap 30 s, full jitter | "slightly more aggressive (300 ms initial) since they usually clear quickly" (Supertone); 30 s cap (QuillAI) |
    ///
    /// Equal jitter keeps at least half of each throttling delay, so a rate limiter that has just said
    /// no is not asked again a few milliseconds later.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::backoff::Backoff;
    /// use tower_http_retry::classify::RetryClass;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::default()
    ///     .backoff_for(RetryClass::Throttling, Backoff::exponential(Duration::from_secs(2)))
    ///     .max_attempts_for(RetryClass::Throttling, 6)
    ///     .backoff_for(RetryClass::Transient, Backoff::constant(Duration::from_millis(100)));
    /// # let _ = policy;
    /// ```
    pub fn backoff_for(mut self, class: RetryClass, backoff: Backoff) -> Self {
        self.classes.get_mut(class).backoff = backoff;
        self
    }

    /// Gives transient failures (5xx, 408, transport errors, timeouts) `retries` retries of their own,
    /// `backoff` apart. Throttling pauses neither spend nor advance them, so this is the shape of "5
    /// retries, and a 429 is a pause of its own" together with
    /// [`throttling_pauses`](Self::throttling_pauses). It lifts the attempt limit of the transient class
    /// (a later [`max_attempts`](Self::max_attempts) sets it again); the attempts of a call are then
    /// at most `1 + retries` plus the throttling pauses.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::backoff::Backoff;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let secs = Duration::from_secs;
    /// let policy = RetryPolicy::default()
    ///     .transient_retries(5, Backoff::exponential(secs(1)).max_delay(secs(30)));
    /// # let _ = policy;
    /// ```
    pub fn transient_retries(self, retries: u32, backoff: Backoff) -> Self {
        self.class_apart(RetryClass::Transient, retries, backoff)
    }

    /// Answers throttling (429, 409 while a keyed request is in flight) with at most `pauses` pauses of
    /// its own, `backoff` long (a `Retry-After` is a floor under it, or the pause itself with
    /// [`RetryAfterMode::Exact`](crate::retry_after::RetryAfterMode::Exact)), outside the transient
    /// loop: a pause neither spends nor advances the transient retries. It lifts the attempt limit of
    /// the throttling class (a later [`max_attempts`](Self::max_attempts) sets it again).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::backoff::{Backoff, Jitter};
    /// use tower_http_retry::RetryPolicy;
    ///
    /// // "A 429 gets a single pause: its Retry-After, else at least 1 s."
    /// let policy = RetryPolicy::default()
    ///     .throttling_pauses(1, Backoff::constant(Duration::from_secs(1)).jitter(Jitter::None));
    /// # let _ = policy;
    /// ```
    pub fn throttling_pauses(self, pauses: u32, backoff: Backoff) -> Self {
        self.class_apart(RetryClass::Throttling, pauses, backoff)
    }

    fn class_apart(mut self, class: RetryClass, retries: u32, backoff: Backoff) -> Self {
        let limits = self.classes.get_mut(class);
        limits.max_attempts = u32::MAX;
        limits.max_retries = retries;
        limits.backoff = backoff;
        self
    }

    /// Draws jitter from sequences derived from `seed`, for reproducible tests: the n-th request of
    /// this policy (and its clones) to draw a jittered wait gets the n-th derived sequence; requests
    /// that never retry, or whose waits have no jitter to draw (no jitter, a zero delay), draw nothing.
    /// Without a seed each request that draws seeds its own generator from the thread-local
    /// cryptographic generator, on its first draw.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::history::Wait;
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// /// The waits of one call to a server that is always unavailable.
    /// async fn waits(policy: RetryPolicy) -> Vec<Wait> {
    ///     let server = service_fn(|_: Request<String>| async {
    ///         Ok::<_, Infallible>(Response::builder().status(503).body(String::new()).unwrap())
    ///     });
    ///     let client = Retry::new(server, policy);
    ///     let response = client.oneshot(Request::new(String::new())).await.unwrap();
    ///     let history = response.extensions().get::<RetryHistory>().unwrap();
    ///     history.attempts().iter().filter_map(|a| a.wait).collect()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let seeded = waits(RetryPolicy::default().seed(7)).await;
    /// assert_eq!(seeded, waits(RetryPolicy::default().seed(7)).await);
    /// assert_ne!(seeded, waits(RetryPolicy::default().seed(8)).await);
    /// # }
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.randomness = Randomness::seeded(seed);
        self
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::wait::backoff::Jitter;

    #[test]
    fn the_shared_setters_set_both_classes_and_the_class_setters_one() {
        let exact = Backoff::constant(Duration::from_millis(5)).jitter(Jitter::None);
        let policy = RetryPolicy::new()
            .backoff(exact.clone())
            .max_attempts(7)
            .max_attempts_for(RetryClass::Throttling, 2);
        assert_eq!(policy.classes.get(RetryClass::Throttling).backoff, exact);
        assert_eq!(policy.classes.get(RetryClass::Transient).backoff, exact);
        assert_eq!(policy.classes.get(RetryClass::Throttling).max_attempts, 2);
        assert_eq!(policy.classes.get(RetryClass::Transient).max_attempts, 7);
        let default = RetryPolicy::new();
        assert_ne!(
            default.classes.get(RetryClass::Throttling).backoff,
            default.classes.get(RetryClass::Transient).backoff
        );
    }
}
