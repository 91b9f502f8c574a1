//! When to stop: the attempts and retries of each class, the total deadline, each attempt's
//! timeout, the retry budget shared by clones, how much of a discarded body is read, and how much
//! of a response body an attempt reads before it is judged.

use std::time::Duration;

use crate::classify::RetryClass;
use crate::policy::retry_policy::RetryPolicy;
use crate::shared::budget::RetryBudget;

/// When to stop: the attempts of each class, the deadline, each attempt's timeout, the retry
/// budget; how much of a discarded body is read, and how much of a response body is read within
/// its attempt.
impl RetryPolicy {
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

    /// Reads each response body, up to `limit` bytes, within its attempt, before the outcome is
    /// classified. Off by default: responses are returned as soon as their head arrives.
    ///
    /// - A body that fails while it is read (a reset, a connection closed before the end, the
    ///   [attempt timeout](Self::attempt_timeout)) fails the attempt, as a transport error after
    ///   sending ([`BodyReadFailed`](crate::body::BodyReadFailed)): retried for idempotent or keyed
    ///   requests, returned otherwise.
    /// - A body read whole is given to the caller ready at once, and to the classifier through
    ///   [`Outcome::body`](crate::classify::Outcome::body): a 200 whose body carries the real error
    ///   can be retried.
    /// - A body longer than `limit` is judged by its head alone, and, when that does not retry it,
    ///   passed on as it streams: the bytes read first, then the rest. Once passed on it is not
    ///   retried; the history says so ([`StopReason::Streamed`](crate::history::StopReason::Streamed)).
    ///
    /// Memory: at most `limit` bytes of body per call in flight (plus, while a classifier runs, one
    /// contiguous copy of a body that is read whole). This is the response's counterpart of the
    /// request's replay buffer ([`ReplayBody`](crate::body::ReplayBody), 64 KiB by default), which
    /// bounds what is kept of a request body; the two limits are separate. A call can turn it on or
    /// off for itself ([`CallSettings::buffer_responses`](crate::CallSettings::buffer_responses),
    /// [`CallSettings::stream_responses`](crate::CallSettings::stream_responses)).
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::io;
    /// use std::pin::Pin;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use std::task::{Context, Poll};
    /// use bytes::Bytes;
    /// use http::{Request, Response};
    /// use http_body::{Body, Frame};
    /// use http_body_util::BodyExt;
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// /// A body whose connection is reset after its first chunk, unless it is `whole`.
    /// struct Page { whole: bool, sent: bool }
    ///
    /// impl Body for Page {
    ///     type Data = Bytes;
    ///     type Error = io::Error;
    ///
    ///     fn poll_frame(
    ///         mut self: Pin<&mut Self>,
    ///         _: &mut Context<'_>,
    ///     ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
    ///         Poll::Ready(match (self.sent, self.whole) {
    ///             (false, _) => {
    ///                 self.sent = true;
    ///                 Some(Ok(Frame::data(Bytes::from_static(b"{\"id\": 7}"))))
    ///             }
    ///             (true, true) => None,
    ///             (true, false) => Some(Err(io::ErrorKind::ConnectionReset.into())),
    ///         })
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let broke = Arc::new(AtomicBool::new(false));
    /// let server = service_fn(move |_: Request<String>| {
    ///     let whole = broke.swap(true, Ordering::SeqCst);
    ///     async move { Ok::<_, Infallible>(Response::new(Page { whole, sent: false })) }
    /// });
    /// let client = Retry::new(server, RetryPolicy::default().buffer_responses(64 * 1024));
    /// // The first body broke while the layer read it: the GET was sent again.
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    /// assert_eq!(RetryHistory::resend_count(response.extensions()), 1);
    /// assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "{\"id\": 7}");
    /// # }
    /// ```
    pub fn buffer_responses(mut self, limit: usize) -> Self {
        self.buffer_limit = Some(limit);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_attempts_means_one() {
        let policy = RetryPolicy::new().max_attempts(0);
        for class in [RetryClass::Throttling, RetryClass::Transient] {
            assert_eq!(policy.classes.get(class).max_attempts, 1);
        }
    }
}
