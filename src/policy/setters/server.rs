//! What the server said: how long a `Retry-After` may be and how it is read, and the throttle that
//! paces requests by what servers asked for.

use std::time::Duration;

use crate::policy::retry_policy::RetryPolicy;
use crate::shared::throttle::Throttle;
use crate::wait::retry_after::RetryAfterMode;

/// What the server asks for: how long a `Retry-After` may be and how it is read, and the throttle
/// that paces requests by it.
impl RetryPolicy {
    /// Waits for a response's `Retry-After` only up to `max`; past it, or past the remaining deadline,
    /// the response is returned at once and [`RetryHistory::retry_after`](crate::RetryHistory::retry_after)
    /// tells the caller what the server asked for.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use http::{Request, Response, StatusCode};
    /// use tokio::time::Instant;
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::{Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // Down for maintenance once, for 2 minutes: longer than the default of 60 s.
    /// let maintenance = Arc::new(AtomicBool::new(true));
    /// let server = service_fn(move |_: Request<String>| {
    ///     let response = match maintenance.swap(false, Ordering::SeqCst) {
    ///         true => Response::builder().status(503).header("retry-after", "120"),
    ///         false => Response::builder(),
    ///     };
    ///     async move { Ok::<_, Infallible>(response.body(String::new()).unwrap()) }
    /// });
    /// assert!(Duration::from_secs(120) > Duration::from_secs(60));
    ///
    /// let start = Instant::now();
    /// let policy = RetryPolicy::default().max_retry_after(Duration::from_secs(300));
    /// let client = Retry::new(server, policy);
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::OK);
    /// assert!(start.elapsed() >= Duration::from_secs(120));
    /// # }
    /// ```
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// Sets how a response's `Retry-After` (or the reset of a spent rate limit) combines with the
    /// backoff: a floor under it ([`RetryAfterMode::Floor`], the default) or the wait itself
    /// ([`RetryAfterMode::Exact`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::backoff::{Backoff, Jitter};
    /// use tower_http_retry::retry_after::RetryAfterMode;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// // "If the response includes a Retry-After header, wait exactly that long. Otherwise wait
    /// // 1 s, 2 s, 4 s."
    /// let policy = RetryPolicy::default()
    ///     .backoff(Backoff::exponential(Duration::from_secs(1)).jitter(Jitter::None))
    ///     .retry_after_mode(RetryAfterMode::Exact);
    /// # let _ = policy;
    /// ```
    pub fn retry_after_mode(mut self, mode: RetryAfterMode) -> Self {
        self.retry_after_mode = mode;
        self
    }

    /// Paces every attempt, first attempts included, with `throttle` (shared by its clones): each
    /// server is sent at the rate it admits, learned from its 429s, `Retry-After` and rate-limit
    /// headers. On by default, with a throttle of the policy's own in pace mode that engages on a
    /// server's first throttling answer. See [`throttle`](crate::throttle).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::throttle::Throttle;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::default().throttle(Throttle::new().shed(Duration::from_secs(1)));
    /// # let _ = policy;
    /// ```
    pub fn throttle(mut self, throttle: Throttle) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// No throttle: every attempt leaves as soon as its own wait is over, whatever the server said to
    /// other requests. Retries of 429s then draw from the retry budget like any other.
    ///
    /// ```
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::default().no_throttle();
    /// # let _ = policy;
    /// ```
    pub fn no_throttle(mut self) -> Self {
        self.throttle = None;
        self
    }
}
