//! The configuration of a retry layer: [`RetryPolicy`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::idempotency::{DEFAULT_IDEMPOTENCY_HEADER, DEFAULT_IDEMPOTENCY_KEY_METHODS};
use crate::classify::{default_decision, Decision, Outcome, RequestInfo, RetryClass};
use crate::plan::Limits;
use crate::policy::before_retry::BeforeRetryFn;
use crate::policy::classes::Classes;
use crate::policy::idempotency::Idempotency;
use crate::policy::observe::Observe;
use crate::shared::budget::RetryBudget;
use crate::shared::throttle::Throttle;
use crate::wait::backoff::Backoff;
use crate::wait::retry_after::RetryAfterMode;
use http::request::Parts;
use http::Method;

/// The default longest `Retry-After` the layer waits for: 60 s.
pub(crate) const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The default number of bytes of a discarded response body read so the connection can be reused.
pub(crate) const DEFAULT_DRAIN_LIMIT: u64 = 64 * 1024;

pub(crate) type ClassifyFn =
    dyn Fn(&RequestInfo<'_>, &Outcome<'_>) -> Option<Decision> + Send + Sync;

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
    pub(crate) classes: Classes,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) throttle: Option<Throttle>,
    pub(crate) max_retry_after: Duration,
    pub(crate) retry_after_mode: RetryAfterMode,
    pub(crate) deadline: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) drain_limit: u64,
    pub(crate) idempotency_header: HeaderName,
    pub(crate) idempotency: Idempotency,
    pub(crate) before_retry: Option<Arc<BeforeRetryFn>>,
    pub(crate) classify: Option<Arc<ClassifyFn>>,
    #[cfg(feature = "grpc")]
    pub(crate) grpc: Option<Arc<crate::classify::grpc::GrpcPolicy>>,
    pub(crate) observe: Observe,
    randomness: Randomness,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            classes: Classes::default(),
            budget: Some(RetryBudget::default()),
            throttle: Some(Throttle::new()),
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            retry_after_mode: RetryAfterMode::Floor,
            deadline: None,
            attempt_timeout: None,
            drain_limit: DEFAULT_DRAIN_LIMIT,
            idempotency_header: DEFAULT_IDEMPOTENCY_HEADER,
            idempotency: Idempotency::default(),
            before_retry: None,
            classify: None,
            #[cfg(feature = "grpc")]
            grpc: None,
            observe: Observe::default(),
            randomness: Randomness::Os,
        }
    }
}

impl RetryPolicy {
    /// The default policy.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::builder().status(503).body(String::new()).unwrap())
    /// });
    /// let client = Retry::new(server, RetryPolicy::new());
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// assert_eq!(history.attempt_count(), 4);
    /// # }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes at most `attempts` attempts in all, the first included (0 is taken as 1), whatever the
    /// class of the failures. Sets both classes' limits; [`max_attempts_for`](Self::max_attempts_for)
    /// after it changes one.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::{Arc, Mutex};
    /// use http::{Request, Response, StatusCode};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // Throttled, unavailable, throttled, then an answer the client never sees.
    /// let statuses = Arc::new(Mutex::new([429u16, 503, 429, 200].into_iter()));
    /// let server = service_fn(move |_: Request<String>| {
    ///     let status = statuses.lock().unwrap().next().unwrap();
    ///     let response = Response::builder().status(status).body(String::new());
    ///     async move { Ok::<_, Infallible>(response.unwrap()) }
    /// });
    /// let policy = RetryPolicy::default().max_attempts(3);
    /// let client = Retry::new(server, policy);
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// assert_eq!(history.attempt_count(), 3);
    /// # }
    /// ```
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        for class in self.classes.both_mut() {
            class.max_attempts = attempts.max(1);
        }
        self
    }

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

    /// Makes at most `attempts` attempts in all (0 is taken as 1) when the latest outcome is of
    /// `class`: with 6 for throttling and 4 for transient, a call stops after its fourth attempt if
    /// that one failed with a 503, after its sixth if with a 429. Both default to 4 (3 retries: "cap
    /// retries at 3 to 5 attempts").
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::{Arc, Mutex};
    /// use http::{Request, Response, StatusCode};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::classify::RetryClass;
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // Throttled four times, then an answer.
    /// let statuses = Arc::new(Mutex::new([429u16, 429, 429, 429, 200].into_iter()));
    /// let server = service_fn(move |_: Request<String>| {
    ///     let status = statuses.lock().unwrap().next().unwrap();
    ///     let response = Response::builder().status(status).body(String::new());
    ///     async move { Ok::<_, Infallible>(response.unwrap()) }
    /// });
    /// let policy = RetryPolicy::default().max_attempts_for(RetryClass::Throttling, 6);
    /// let client = Retry::new(server, policy);
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    /// // The default of 4 attempts would have returned the last 429.
    /// assert_eq!(response.status(), StatusCode::OK);
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// assert_eq!(history.attempt_count(), 5);
    /// # }
    /// ```
    pub fn max_attempts_for(mut self, class: RetryClass, attempts: u32) -> Self {
        self.classes.get_mut(class).max_attempts = attempts.max(1);
        self
    }

    /// Draws every retry from `budget`, which may be shared with other policies (clone the handle).
    ///
    /// The default policy has a budget of its own with [`RetryBudget`]'s default settings (10% of
    /// requests over 10 s, plus 10 retries a window), shared by every layer built from the policy or
    /// its clones. A retry the budget refuses is not made: the last response or error is returned and
    /// the history's stop reason is [`BudgetExhausted`](crate::history::StopReason::BudgetExhausted).
    ///
    /// ```
    /// use tower_http_retry::budget::RetryBudget;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let shared = RetryBudget::builder().ratio(0.2).build();
    /// let users = RetryPolicy::default().retry_budget(shared.clone());
    /// let orders = RetryPolicy::default().retry_budget(shared);
    /// # let _ = (users, orders);
    /// ```
    pub fn retry_budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Retries without a budget: every failure gets all its retries, however many requests fail.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::builder().status(503).body(String::new()).unwrap())
    /// });
    /// let client = Retry::new(server, RetryPolicy::default().no_retry_budget());
    ///
    /// // With a budget, retries would soon be refused; without one, every call gets its 3.
    /// for _ in 0..20 {
    ///     let request = Request::new(String::new());
    ///     let response = client.clone().oneshot(request).await.unwrap();
    ///     assert_eq!(RetryHistory::resend_count(response.extensions()), 3);
    /// }
    /// # }
    /// ```
    pub fn no_retry_budget(mut self) -> Self {
        self.budget = None;
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

    /// Ends the whole call, attempts and waits included, after `deadline`: no wait is started that
    /// would end past it, and an attempt in flight when it passes is canceled.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::Duration;
    /// use http::{Request, Response, StatusCode};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::backoff::{Backoff, Jitter};
    /// use tower_http_retry::history::StopReason;
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::builder().status(503).body(String::new()).unwrap())
    /// });
    /// let policy = RetryPolicy::default()
    ///     .max_attempts(10)
    ///     .backoff(Backoff::constant(Duration::from_millis(1500)).jitter(Jitter::None))
    ///     .deadline(Duration::from_secs(2));
    /// let client = Retry::new(server, policy);
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    ///
    /// // Attempts at 0 s and 1.5 s; a third would start after the deadline.
    /// assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// assert_eq!(history.attempt_count(), 2);
    /// assert_eq!(history.stop_reason(), StopReason::Deadline);
    /// # }
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Cancels an attempt whose response head has not arrived within `timeout`, and retries it if the
    /// request is idempotent. The response body is not covered: it belongs to the caller.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::classify::ErrorKind;
    /// use tower_http_retry::history::AttemptOutcome;
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // The first attempt hangs; the second is answered at once.
    /// let hang = Arc::new(AtomicBool::new(true));
    /// let server = service_fn(move |_: Request<String>| {
    ///     let hang = hang.swap(false, Ordering::SeqCst);
    ///     async move {
    ///         if hang {
    ///             tokio::time::sleep(Duration::from_secs(3600)).await;
    ///         }
    ///         Ok::<_, Infallible>(Response::new(String::new()))
    ///     }
    /// });
    /// let policy = RetryPolicy::default().attempt_timeout(Duration::from_secs(2));
    /// let client = Retry::new(server, policy);
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    ///
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// let timed_out = AttemptOutcome::Error(ErrorKind::AttemptTimeout);
    /// assert_eq!(history.attempts()[0].outcome, timed_out);
    /// assert_eq!(history.attempt_count(), 2);
    /// # }
    /// ```
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Reads at most `bytes` of a discarded response body before retrying, so the connection can be
    /// reused; a longer body is dropped and its connection closed. 0 never reads.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::{Arc, Mutex};
    /// use bytes::Bytes;
    /// use http::{Request, Response};
    /// use http_body_util::{BodyExt, Full};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::{Retry, RetryPolicy};
    ///
    /// /// Whether the body of a discarded 503 was read.
    /// async fn drained(policy: RetryPolicy) -> bool {
    ///     let read = Arc::new(AtomicBool::new(false));
    ///     let statuses = Arc::new(Mutex::new([503u16, 200].into_iter()));
    ///     let seen = read.clone();
    ///     let server = service_fn(move |_: Request<String>| {
    ///         let status = statuses.lock().unwrap().next().unwrap();
    ///         let seen = seen.clone();
    ///         let page = Full::new(Bytes::from_static(b"<h1>Service Unavailable</h1>"));
    ///         let body = page.inspect_frame(move |_| seen.store(true, Ordering::SeqCst));
    ///         let response = Response::builder().status(status).body(body);
    ///         async move { Ok::<_, Infallible>(response.unwrap()) }
    ///     });
    ///     let client = Retry::new(server, policy);
    ///     client.oneshot(Request::new(String::new())).await.unwrap();
    ///     read.load(Ordering::SeqCst)
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // The 28-byte page is read while the backoff runs...
    /// assert!(drained(RetryPolicy::default()).await);
    /// // ...unless it is longer than the limit: then it is dropped unread.
    /// assert!(!drained(RetryPolicy::default().drain_limit(16)).await);
    /// # }
    /// ```
    pub fn drain_limit(mut self, bytes: u64) -> Self {
        self.drain_limit = bytes;
        self
    }

    /// Recognises `header` as the idempotency key: a request carrying it counts as idempotent. It is
    /// also the header [`inject_idempotency_keys`](Self::inject_idempotency_keys) sets.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::{Arc, Mutex};
    /// use http::{HeaderName, Request, Response, StatusCode};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::{Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // Unavailable, then the charge is made.
    /// let statuses = Arc::new(Mutex::new([503u16, 201].into_iter()));
    /// let server = service_fn(move |_: Request<String>| {
    ///     let status = statuses.lock().unwrap().next().unwrap();
    ///     let response = Response::builder().status(status).body(String::new());
    ///     async move { Ok::<_, Infallible>(response.unwrap()) }
    /// });
    /// assert_eq!(http::HeaderName::from_static("idempotency-key"), "idempotency-key");
    /// let header = HeaderName::from_static("x-idempotency-key");
    /// let policy = RetryPolicy::default().idempotency_header(header);
    ///
    /// // A POST with a key in that header is retried after a 503.
    /// let charge = Request::post("http://pay.example/v1/charges")
    ///     .header("x-idempotency-key", "order-42")
    ///     .body(String::from("{}"))
    ///     .unwrap();
    /// let response = Retry::new(server, policy).oneshot(charge).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::CREATED);
    /// # }
    /// ```
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
        self.randomness = Randomness::Seeded {
            seed,
            next: Arc::new(AtomicU64::new(0)),
        };
        self
    }

    #[cfg(feature = "grpc")]
    /// Judges responses as gRPC responses: by their `grpc-status` (the code a trailers-only response
    /// carries in its head) and `grpc` codes, honouring `grpc-retry-pushback-ms` to the millisecond, and
    /// marking every retry with `grpc-previous-rpc-attempts`. A `grpc-timeout` on the request is a
    /// deadline for the whole call (the shorter of it and [`deadline`](RetryPolicy::deadline)), and each
    /// retry carries the time left. Transport errors keep the default rules: a call is retried after a
    /// failure only when it never left (a connect error, HTTP/2 REFUSED_STREAM), as A6's transparent
    /// retries. A hook set with [`classify_with`](RetryPolicy::classify_with) still decides first.
    ///
    /// See [`grpc`](crate::grpc) for the whole picture.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::grpc::GrpcPolicy;
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // UNAVAILABLE once (a trailers-only answer), then OK.
    /// let calls = Arc::new(AtomicU32::new(0));
    /// let server = service_fn(move |request: Request<String>| {
    ///     let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
    ///     let retried = request.headers().get("grpc-previous-rpc-attempts").cloned();
    ///     async move {
    ///         let status = if first { "14" } else { "0" };
    ///         assert_eq!(retried.is_some(), !first);
    ///         let response = Response::builder().header("grpc-status", status);
    ///         Ok::<_, Infallible>(response.body(String::new()).unwrap())
    ///     }
    /// });
    /// let client = Retry::new(server, RetryPolicy::default().grpc(GrpcPolicy::default()));
    /// let response = client.oneshot(Request::post("http://svc/pkg.Svc/Call").body(String::new()).unwrap());
    /// let response = response.await.unwrap();
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// assert!(history.to_string().starts_with("UNAVAILABLE (wait "), "{history}");
    /// assert!(history.to_string().ends_with("OK: the outcome was final"), "{history}");
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    pub fn grpc(mut self, grpc: crate::classify::grpc::GrpcPolicy) -> Self {
        self.grpc = Some(Arc::new(grpc));
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

    /// Retries outcomes of `class` at most `retries` times in one call, counting only that class's
    /// retries: the other class's retries neither spend nor advance them. No limit by default; the
    /// attempt limits ([`max_attempts`](Self::max_attempts), [`max_attempts_for`](Self::max_attempts_for))
    /// still apply, so raise them when the classes should be limited only separately.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::backoff::{Backoff, Jitter};
    /// use tower_http_retry::classify::RetryClass;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// // Five exponential retries for 5xx; a 429 gets one pause of its own, outside that loop.
    /// let policy = RetryPolicy::default()
    ///     .max_attempts(u32::MAX)
    ///     .max_retries_for(RetryClass::Transient, 5)
    ///     .max_retries_for(RetryClass::Throttling, 1)
    ///     .backoff_for(RetryClass::Throttling, Backoff::constant(Duration::from_secs(1)).jitter(Jitter::None));
    /// # let _ = policy;
    /// ```
    pub fn max_retries_for(mut self, class: RetryClass, retries: u32) -> Self {
        self.classes.get_mut(class).max_retries = retries;
        self
    }

    /// Calls `hook` on the head of every retry before it is sent, with the number of the attempt it
    /// starts (2 for the first retry). Each retry starts from a fresh copy of the first attempt's head,
    /// so changes do not pile up from one retry to the next; the first attempt is sent as the caller
    /// made it.
    ///
    /// The idempotency key header is put back exactly as it was after the hook runs (added, changed or
    /// removed alike): a retry never gets a new key. Outcomes are still judged by the original request's
    /// method and headers.
    ///
    /// ```
    /// use http::HeaderValue;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::default().before_retry(|head, attempt| {
    ///     head.headers.insert("x-attempt", HeaderValue::from(attempt));
    ///     // A signature over the request would be computed afresh here.
    ///     head.headers.insert("x-signed-at", HeaderValue::from_static("1700000000"));
    /// });
    /// # let _ = policy;
    /// ```
    pub fn before_retry<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut Parts, u32) + Send + Sync + 'static,
    {
        self.before_retry = Some(Arc::new(hook));
        self
    }

    /// Gives every POST and PATCH that carries no idempotency key a fresh one before its first attempt,
    /// in the [`idempotency_header`](Self::idempotency_header), and sends it verbatim on every retry.
    ///
    /// Only for servers that honour the header: the request then counts as idempotent and is retried
    /// after failures that may have taken effect.
    ///
    /// ```
    /// use http::HeaderName;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::default()
    ///     .idempotency_header(HeaderName::from_static("x-idempotency-key"))
    ///     .inject_idempotency_keys();
    /// # let _ = policy;
    /// ```
    ///
    /// # Retrying a mutation without repeating its side effect
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{Request, Response, StatusCode};
    /// use http_body_util::Full;
    /// use tower::{service_fn, ServiceBuilder, ServiceExt};
    /// use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // A payments API that honours `Idempotency-Key` and answers this one charge with a 503 first.
    /// let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let api = service_fn(move |request: Request<Full<Bytes>>| {
    ///     let mut keys = log.lock().unwrap();
    ///     keys.push(request.headers()["idempotency-key"].clone());
    ///     let status = if keys.len() == 1 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::CREATED };
    ///     let mut response = Response::new(Full::new(Bytes::new()));
    ///     *response.status_mut() = status;
    ///     async move { Ok::<_, std::convert::Infallible>(response) }
    /// });
    ///
    /// let client = ServiceBuilder::new()
    ///     .layer(RetryLayer::new(RetryPolicy::default().inject_idempotency_keys()))
    ///     .service(api);
    ///
    /// let charge = Request::post("https://pay.example/v1/charges").body(Full::new(Bytes::from("{}"))).unwrap();
    /// let response = client.oneshot(charge).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::CREATED);
    ///
    /// // One key, set before the first attempt and sent verbatim on the retry.
    /// let seen = seen.lock().unwrap();
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// assert_eq!(seen.len(), 2);
    /// assert_eq!(seen[0], seen[1]);
    /// assert_eq!(history.idempotency_key(), Some(&seen[0]));
    /// # }
    /// ```
    ///
    /// # The contract
    ///
    /// A server that honours idempotency keys runs the side effect of a key once, answers a repeat of a
    /// finished one with the stored result (marking it as a replay), answers `409 Conflict` while the first
    /// is still running, and `422 Unprocessable Content` when the key comes back with a different payload.
    /// Retrying is then safe after any failure, as long as every attempt carries the same key:
    ///
    /// - A request carrying the key header ([`RetryPolicy::idempotency_header`], `Idempotency-Key` by default)
    ///   counts as idempotent: it is retried after 5xx, resets and timeouts like a GET.
    /// - `409` with a key is retried with the same key, waiting at least its `Retry-After`; `422` is not.
    /// - [`RetryPolicy::inject_idempotency_keys`] gives each POST and PATCH that has no key a fresh one (a
    ///   version 4 UUID from the operating system's cryptographic generator) before its first attempt. Every
    ///   retry sends the same key, a key the caller set is never replaced (a blank or whitespace-only value
    ///   is no key: it is replaced when injection is on, and otherwise leaves the request unkeyed), and no
    ///   key is ever minted to
    ///   force a retry. [`RetryPolicy::seed`] does not touch keys: a seeded key would repeat across runs.
    /// - A response marked as a replay (`X-Idempotency-Replayed: true` by default,
    ///   [`RetryPolicy::idempotency_replayed_header`]) is reported by [`RetryHistory::is_replayed`]; the key
    ///   the request carried is in [`RetryHistory::idempotency_key`], on responses and on errors, so a caller
    ///   can try the same operation again later with the same key. A response the first attempt settled
    ///   carries a history when the layer set the key, or when a request of a method that is not
    ///   idempotent carried its own; an idempotent request's own key is not looked up then.
    /// - A [`before_retry`](RetryPolicy::before_retry) hook cannot change the key.
    ///
    /// Turn injection on only for servers that honour the header: a keyed request counts as idempotent, so a
    /// server that ignores the key may run a retried POST twice.
    ///
    /// [`RetryHistory::is_replayed`]: crate::RetryHistory::is_replayed
    /// [`RetryHistory::idempotency_key`]: crate::RetryHistory::idempotency_key
    pub fn inject_idempotency_keys(self) -> Self {
        self.inject_idempotency_keys_for(DEFAULT_IDEMPOTENCY_KEY_METHODS)
    }

    /// Like [`inject_idempotency_keys`](Self::inject_idempotency_keys), for requests of these methods.
    /// An empty list turns injection off.
    ///
    /// ```
    /// use http::Method;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// // This API also deduplicates DELETEs that trigger refunds.
    /// let policy = RetryPolicy::default()
    ///     .inject_idempotency_keys_for([Method::POST, Method::PATCH, Method::DELETE]);
    /// # let _ = policy;
    /// ```
    pub fn inject_idempotency_keys_for(
        mut self,
        methods: impl IntoIterator<Item = Method>,
    ) -> Self {
        self.idempotency.inject_for = methods.into_iter().collect();
        self
    }

    /// Recognises a response carrying `header: true` (any case) as the replay of an earlier execution
    /// of the same key; [`RetryHistory::is_replayed`](crate::RetryHistory::is_replayed) reports it.
    ///
    /// ```
    /// use http::HeaderName;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::default()
    ///     .idempotency_replayed_header(HeaderName::from_static("idempotent-replayed"));
    /// # let _ = policy;
    /// ```
    pub fn idempotency_replayed_header(mut self, header: HeaderName) -> Self {
        self.idempotency.replayed_header = header;
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
}

impl RetryPolicy {
    /// The gRPC rules, for Debug; `None` without the `grpc` feature.
    fn grpc_rules(&self) -> Option<&dyn fmt::Debug> {
        #[cfg(feature = "grpc")]
        if let Some(grpc) = &self.grpc {
            return Some(grpc);
        }
        None
    }
}

#[derive(Clone)]
enum Randomness {
    Os,
    Seeded { seed: u64, next: Arc<AtomicU64> },
}

impl Limits for RetryPolicy {
    fn max_attempts(&self, class: RetryClass) -> u32 {
        self.classes.get(class).max_attempts
    }

    fn max_retries(&self, class: RetryClass) -> u32 {
        self.classes.get(class).max_retries
    }

    fn backoff(&self, class: RetryClass) -> &Backoff {
        &self.classes.get(class).backoff
    }

    fn retry_after_cap(&self) -> Duration {
        self.max_retry_after
    }

    fn retry_after_mode(&self) -> &RetryAfterMode {
        &self.retry_after_mode
    }

    fn budget(&self) -> Option<&RetryBudget> {
        self.budget.as_ref()
    }

    fn rng(&self) -> SmallRng {
        RetryPolicy::rng(self)
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("classes", &self.classes)
            .field("budget", &self.budget)
            .field("throttle", &self.throttle)
            .field("max_retry_after", &self.max_retry_after)
            .field("retry_after_mode", &self.retry_after_mode)
            .field("deadline", &self.deadline)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("drain_limit", &self.drain_limit)
            .field("idempotency_header", &self.idempotency_header)
            .field("idempotency", &self.idempotency)
            .field("before_retry_hook", &self.before_retry.is_some())
            .field("classify_hook", &self.classify.is_some())
            .field("grpc", &self.grpc_rules())
            .field("observe", &self.observe)
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
        let policy = RetryPolicy::new().max_attempts(0);
        for class in [RetryClass::Throttling, RetryClass::Transient] {
            assert_eq!(policy.classes.get(class).max_attempts, 1);
        }
    }

    #[test]
    fn the_shared_setters_set_both_classes_and_the_class_setters_one() {
        use crate::wait::backoff::Jitter;
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

    #[test]
    fn clones_of_a_policy_share_its_budget() {
        let policy = RetryPolicy::new();
        let clone = policy.clone();
        assert!(policy
            .budget
            .as_ref()
            .unwrap()
            .same_as(clone.budget.as_ref().unwrap()));
        let other = RetryPolicy::new();
        assert!(!policy
            .budget
            .as_ref()
            .unwrap()
            .same_as(other.budget.as_ref().unwrap()));
        assert!(RetryPolicy::new().no_retry_budget().budget.is_none());
    }
}
