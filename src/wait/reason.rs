//! What a wait between two attempts is, and what set its length: the product of this folder, recorded
//! in the history.

use std::time::Duration;

/// A wait between two attempts.
///
/// ```
/// use std::convert::Infallible;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceExt};
/// use tower_http_retry::backoff::Backoff;
/// use tower_http_retry::history::{Wait, WaitReason};
/// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// // Unavailable once, asking for 2 s.
/// let unavailable = Arc::new(AtomicBool::new(true));
/// let server = service_fn(move |_: Request<String>| {
///     let response = match unavailable.swap(false, Ordering::SeqCst) {
///         true => Response::builder().status(503).header("retry-after", "2"),
///         false => Response::builder(),
///     };
///     async move { Ok::<_, Infallible>(response.body(String::new()).unwrap()) }
/// });
/// let policy = RetryPolicy::default().backoff(Backoff::constant(Duration::from_millis(250)));
/// let client = Retry::new(server, policy);
/// let response = client.oneshot(Request::new(String::new())).await.unwrap();
///
/// let history = response.extensions().get::<RetryHistory>().unwrap();
/// let asked = Wait {
///     duration: Duration::from_secs(2),
///     reason: WaitReason::RetryAfter,
/// };
/// // Longer than the backoff, so waited for.
/// assert_eq!(history.attempts()[0].wait, Some(asked));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Wait {
    /// How long.
    pub duration: Duration,
    /// What set its length.
    pub reason: WaitReason,
}

/// What set the length of a wait.
///
/// ```
/// use std::convert::Infallible;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceExt};
/// use tower_http_retry::history::WaitReason;
/// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// // Throttled once: no Retry-After, but a spent quota that resets in 3 s.
/// let throttled = Arc::new(AtomicBool::new(true));
/// let server = service_fn(move |_: Request<String>| {
///     let response = match throttled.swap(false, Ordering::SeqCst) {
///         true => Response::builder()
///             .status(429)
///             .header("ratelimit", r#""default";r=0;t=3"#),
///         false => Response::builder(),
///     };
///     async move { Ok::<_, Infallible>(response.body(String::new()).unwrap()) }
/// });
/// let client = Retry::new(server, RetryPolicy::default());
/// let response = client.oneshot(Request::new(String::new())).await.unwrap();
///
/// let history = response.extensions().get::<RetryHistory>().unwrap();
/// let wait = history.attempts()[0].wait.unwrap();
/// assert_eq!(wait.reason, WaitReason::RateLimitReset);
/// assert_eq!(wait.duration, Duration::from_secs(3));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitReason {
    /// The backoff schedule.
    Backoff,
    /// The response's `Retry-After`, which was longer than the backoff or, with
    /// [`RetryAfterMode::Exact`](crate::retry_after::RetryAfterMode::Exact), replaced it.
    RetryAfter,
    /// The reset of a rate limit the response reported as spent, which was longer than the backoff or,
    /// with [`RetryAfterMode::Exact`](crate::retry_after::RetryAfterMode::Exact), replaced it.
    RateLimitReset,
    /// The gRPC server's `grpc-retry-pushback-ms`, waited for exactly
    /// ([`RetryPolicy::grpc`](crate::RetryPolicy), feature `grpc`).
    GrpcPushback,
}
