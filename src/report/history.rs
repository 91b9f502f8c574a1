//! What happened to a call: the [`RetryHistory`] response extension.
//!
//! ```
//! # async fn demo(response: http::Response<()>) {
//! use tower_http_retry::RetryHistory;
//!
//! let resends = RetryHistory::resend_count(response.extensions());
//! if let Some(history) = response.extensions().get::<RetryHistory>() {
//!     println!("{} attempts, stopped because {}", history.attempt_count(), history.stop_reason());
//!     if let Some(delay) = history.retry_after() {
//!         println!("the server asked us to come back in {delay:?}");
//!     }
//! }
//! # let _ = resends;
//! # }
//! ```
//!
//! The extension is inserted on every response the layer had any decision to make about (a retry, or a
//! retry it wanted but did not make), on every response to a request that got its idempotency key from
//! the layer, and on every response to a request of a method that is not idempotent (POST, PATCH, ...)
//! that carried a key of its own (so that [`RetryHistory::is_replayed`] tells whether the server
//! replayed it). Any other response that the first attempt returned and that needed no retry is passed
//! through untouched, so the common path allocates nothing and reads no header: an absent extension
//! means "one attempt, nothing to retry, no key to report". A history that is made always reports the
//! key the request carried. [`Error::history`](crate::Error::history) gives the same record for calls
//! that end in an error.

use std::fmt;
use std::time::Duration;

use http::{Extensions, HeaderValue};
use smallvec::SmallVec;

use crate::body::NotReplayable;
use crate::classify::Decision;
use crate::report::check::CheckRecord;
pub use crate::report::outcome::AttemptOutcome;
use crate::wait::{Wait, WaitReason};

/// The record of every attempt of one call, and why the layer stopped.
///
/// ```
/// use std::convert::Infallible;
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceExt};
/// use tower_http_retry::backoff::{Backoff, Jitter};
/// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// // Answers 503, then 200.
/// let statuses = Arc::new(Mutex::new([503u16, 200].into_iter()));
/// let server = service_fn(move |_: Request<String>| {
///     let status = statuses.lock().unwrap().next().unwrap();
///     let response = Response::builder().status(status).body(String::new());
///     async move { Ok::<_, Infallible>(response.unwrap()) }
/// });
/// let policy = RetryPolicy::default()
///     .backoff(Backoff::constant(Duration::from_millis(250)).jitter(Jitter::None));
/// let client = Retry::new(server, policy);
/// let response = client.oneshot(Request::new(String::new())).await.unwrap();
///
/// let history = response.extensions().get::<RetryHistory>().unwrap();
/// assert_eq!(history.attempt_count(), 2);
/// let summary = "503 (wait 250ms backoff), 200: the outcome was final";
/// assert_eq!(history.to_string(), summary);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryHistory {
    // Inline up to three attempts (two retries), the common retried call: its history makes no
    // allocation of its own.
    attempts: SmallVec<[AttemptRecord; 3]>,
    stop: StopReason,
    idempotency_key: Option<HeaderValue>,
    replayed: bool,
    checks: Vec<CheckRecord>,
    /// Hedges sent (copies of an attempt still in flight), and the attempt whose outcome was
    /// returned when there were any.
    hedges: u32,
    won_by: Option<u32>,
}

/// One attempt: what it produced, how it was judged, and the wait that followed it.
///
/// ```
/// use std::convert::Infallible;
/// use std::sync::{Arc, Mutex};
/// use http::{Request, Response, StatusCode};
/// use tower::{service_fn, ServiceExt};
/// use tower_http_retry::classify::{Decision, RetryClass};
/// use tower_http_retry::history::AttemptOutcome;
/// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// // Answers 503, then 200.
/// let statuses = Arc::new(Mutex::new([503u16, 200].into_iter()));
/// let server = service_fn(move |_: Request<String>| {
///     let status = statuses.lock().unwrap().next().unwrap();
///     let response = Response::builder().status(status).body(String::new());
///     async move { Ok::<_, Infallible>(response.unwrap()) }
/// });
/// let client = Retry::new(server, RetryPolicy::default());
/// let response = client.oneshot(Request::new(String::new())).await.unwrap();
///
/// let history = response.extensions().get::<RetryHistory>().unwrap();
/// let (first, last) = (&history.attempts()[0], &history.attempts()[1]);
/// let unavailable = AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE);
/// assert_eq!(first.outcome, unavailable);
/// assert_eq!(first.decision, Decision::Retry(RetryClass::Transient));
/// assert!(first.wait.is_some());
/// assert_eq!(last.decision, Decision::Done);
/// assert_eq!(last.wait, None);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptRecord {
    /// The status, or the kind of failure.
    pub outcome: AttemptOutcome,
    /// How the outcome was classified.
    pub decision: Decision,
    /// The delay the response asked for: its `Retry-After` if it held a valid one, or else the reset
    /// of a rate limit it reported as spent ([`rate_limit`](crate::rate_limit)).
    pub retry_after: Option<Duration>,
    /// The wait before the next attempt; `None` after the last one, and after a hedged attempt
    /// that failed while another attempt of its call was still in flight (the call went on with
    /// that one, and waited for nothing).
    pub wait: Option<Wait>,
}

/// Why the layer returned what it returned.
///
/// A response comes back with a reason too, when the layer gave up on it:
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response, StatusCode};
/// use tower::{service_fn, ServiceExt};
/// use tower_http_retry::history::StopReason;
/// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let server = service_fn(|_: Request<String>| async {
///     Ok::<_, Infallible>(Response::builder().status(503).body(String::new()).unwrap())
/// });
/// let policy = RetryPolicy::default().max_attempts(2);
/// let client = Retry::new(server, policy);
/// let response = client.oneshot(Request::new(String::new())).await.unwrap();
/// assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
///
/// let history = response.extensions().get::<RetryHistory>().unwrap();
/// let stop = history.stop_reason();
/// assert_eq!(stop, StopReason::AttemptsExhausted);
/// assert!(stop.gave_up());
/// assert_eq!(stop.to_string(), "the attempt limit was reached");
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The last outcome was final: a success, or a failure that a retry would not change.
    Finished,
    /// The last outcome was retryable, but the request may have taken effect and is not idempotent.
    NotIdempotent,
    /// The attempt limit, or the retry limit of the outcome's class
    /// ([`RetryPolicy::max_retries_for`](crate::RetryPolicy::max_retries_for)), was reached.
    AttemptsExhausted,
    /// The total deadline passed, or the next wait would have ended past it.
    Deadline,
    /// The server's `Retry-After` asked for more than the policy's `max_retry_after`.
    RetryAfterTooLong,
    /// The request body could not be sent again.
    BodyNotReplayable(NotReplayable),
    /// The retry budget ([`budget`](crate::budget)) refused the retry: too many requests are being
    /// retried.
    BudgetExhausted,
    /// A [check](crate::check) before the retry found that the request must not be sent again; the
    /// last attempt's outcome is returned.
    CheckStopped,
    /// A [check](crate::check) before the retry found what the request was for (the job it created,
    /// say) and returned that response instead of sending the request again.
    CheckAnswered,
    /// A [check](crate::check) before the retry did not answer within the attempt timeout (a check
    /// is bounded as an attempt is, and by the deadline); the last attempt's outcome is returned.
    CheckTimedOut,
    /// The [throttle](crate::throttle) in shed mode refused the attempt without sending it: its turn
    /// was further away than the mode allows, or the server's line was full.
    Shed,
    /// The inner service failed while getting ready for the next attempt (its `poll_ready` returned
    /// an error), before the first or before a retry; the error is the call's.
    NotReady,
    /// The response body was longer than the policy's
    /// [`buffer_responses`](crate::RetryPolicy::buffer_responses) limit and its head called for no
    /// retry: it was passed on to the caller as it streams (the bytes read first, then the rest),
    /// and is not retried once passed on (a failure while the caller reads it is the caller's).
    Streamed,
}

impl StopReason {
    /// Whether the layer gave up on an outcome it would otherwise have retried.
    ///
    /// ```
    /// use tower_http_retry::history::StopReason;
    ///
    /// assert!(!StopReason::Finished.gave_up());
    /// assert!(StopReason::NotIdempotent.gave_up());
    /// assert!(StopReason::BudgetExhausted.gave_up());
    /// ```
    pub fn gave_up(self) -> bool {
        !matches!(
            self,
            StopReason::Finished | StopReason::CheckAnswered | StopReason::Streamed
        )
    }

    /// A short snake-case name: the metrics' `stop_reason` label, and gRPC's `x-retry-stop`.
    #[cfg(any(feature = "grpc", feature = "metrics"))]
    pub(crate) fn as_label(self) -> &'static str {
        match self {
            StopReason::Finished => "finished",
            StopReason::NotIdempotent => "not_idempotent",
            StopReason::AttemptsExhausted => "attempts_exhausted",
            StopReason::Deadline => "deadline",
            StopReason::RetryAfterTooLong => "retry_after_too_long",
            StopReason::BodyNotReplayable(_) => "body_not_replayable",
            StopReason::BudgetExhausted => "budget_exhausted",
            StopReason::Shed => "shed",
            StopReason::CheckStopped => "check_stopped",
            StopReason::CheckAnswered => "check_answered",
            StopReason::CheckTimedOut => "check_timed_out",
            StopReason::NotReady => "not_ready",
            StopReason::Streamed => "streamed",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Finished => f.write_str("the outcome was final"),
            StopReason::NotIdempotent => {
                f.write_str("the request may have taken effect and is not idempotent")
            }
            StopReason::AttemptsExhausted => f.write_str("the attempt limit was reached"),
            StopReason::Deadline => f.write_str("the deadline would pass"),
            StopReason::RetryAfterTooLong => f.write_str("Retry-After was longer than allowed"),
            StopReason::BodyNotReplayable(why) => write!(f, "{why}"),
            StopReason::BudgetExhausted => f.write_str("the retry budget was spent"),
            StopReason::CheckStopped => f.write_str("the check before the retry said stop"),
            StopReason::CheckAnswered => f.write_str("the check before the retry found the answer"),
            StopReason::CheckTimedOut => {
                f.write_str("the check before the retry did not answer within the attempt timeout")
            }
            StopReason::Shed => f.write_str("the throttle shed the request"),
            StopReason::NotReady => f.write_str("the service failed while getting ready"),
            StopReason::Streamed => f.write_str(
                "the response body was over the buffer limit and passed on as it streams",
            ),
        }
    }
}

impl Default for RetryHistory {
    /// No attempt yet.
    fn default() -> Self {
        Self {
            attempts: SmallVec::new(),
            stop: StopReason::Finished,
            idempotency_key: None,
            replayed: false,
            checks: Vec::new(),
            hedges: 0,
            won_by: None,
        }
    }
}

impl RetryHistory {
    pub(crate) fn push(&mut self, record: AttemptRecord) {
        self.attempts.push(record);
    }

    pub(crate) fn stop(&mut self, reason: StopReason) {
        self.stop = reason;
    }

    /// Records the key every attempt carried; the copy kept here is marked sensitive, so `Debug`
    /// output of the history (or of an [`Error`](crate::Error)) never shows it.
    pub(crate) fn set_idempotency_key(&mut self, key: Option<HeaderValue>) {
        self.idempotency_key = key.map(|mut key| {
            key.set_sensitive(true);
            key
        });
    }

    pub(crate) fn set_replayed(&mut self, replayed: bool) {
        self.replayed = replayed;
    }

    /// A hedge was sent.
    pub(crate) fn hedged(&mut self) {
        self.hedges = self.hedges.saturating_add(1);
    }

    /// Attempt number `attempt` won the race its hedges ran.
    pub(crate) fn won(&mut self, attempt: u32) {
        self.won_by = Some(attempt);
    }

    pub(crate) fn push_check(&mut self, record: CheckRecord) {
        self.checks.push(record);
    }

    /// Every check run before a retry ([`check`](crate::check)), in order; empty without one.
    ///
    /// ```
    /// use tower_http_retry::RetryHistory;
    ///
    /// assert!(RetryHistory::default().checks().is_empty());
    /// ```
    pub fn checks(&self) -> &[CheckRecord] {
        &self.checks
    }

    /// The idempotency key every attempt carried, the caller's own or the one the layer set; `None`
    /// when the request carried none.
    ///
    /// A call that ended in an error may still have taken effect: trying the same operation again
    /// later with this key lets the server deduplicate it.
    ///
    /// ```
    /// use std::io;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::{Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Err::<Response<String>, _>(io::Error::from(io::ErrorKind::ConnectionReset))
    /// });
    /// let client = Retry::new(server, RetryPolicy::default().inject_idempotency_keys());
    /// let charge = Request::post("http://pay.example/v1/charges")
    ///     .body(String::from("{}"))
    ///     .unwrap();
    /// let error = client.clone().oneshot(charge).await.unwrap_err();
    ///
    /// // The charge may have gone through: try it again later with the same key.
    /// let key = error.history().idempotency_key().unwrap().clone();
    /// let later = Request::post("http://pay.example/v1/charges")
    ///     .header("idempotency-key", key.clone())
    ///     .body(String::from("{}"))
    ///     .unwrap();
    /// let error = client.oneshot(later).await.unwrap_err();
    /// // A key the caller set is kept.
    /// assert_eq!(error.history().idempotency_key(), Some(&key));
    /// # }
    /// ```
    pub fn idempotency_key(&self) -> Option<&HeaderValue> {
        self.idempotency_key.as_ref()
    }

    /// Whether the response was marked as the replay of an earlier execution of the same key (by
    /// default `X-Idempotency-Replayed: true`): the side effect ran once, on an earlier attempt or call.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // The server has already run this key: it answers with the stored result.
    /// let server = service_fn(|_: Request<String>| async {
    ///     let response = Response::builder()
    ///         .status(201)
    ///         .header(http::HeaderName::from_static("x-idempotency-replayed"), "true");
    ///     Ok::<_, Infallible>(response.body(String::new()).unwrap())
    /// });
    /// let charge = Request::post("http://pay.example/v1/charges")
    ///     .header(http::HeaderName::from_static("idempotency-key"), "order-42")
    ///     .body(String::from("{}"))
    ///     .unwrap();
    /// let client = Retry::new(server, RetryPolicy::default());
    /// let response = client.oneshot(charge).await.unwrap();
    ///
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// assert_eq!(history.idempotency_key().unwrap(), "order-42");
    /// assert!(history.is_replayed());
    /// # }
    /// ```
    pub fn is_replayed(&self) -> bool {
        self.replayed
    }

    /// Every attempt, in order.
    pub fn attempts(&self) -> &[AttemptRecord] {
        &self.attempts
    }

    /// How many attempts were made.
    pub fn attempt_count(&self) -> u32 {
        u32::try_from(self.attempts.len()).unwrap_or(u32::MAX)
    }

    /// How many hedges were sent: copies of an attempt sent while it was still in flight (see
    /// [`hedge`](crate::hedge)). Each is an attempt; those dropped when another won have no
    /// record in [`attempts`](Self::attempts).
    ///
    /// ```
    /// use tower_http_retry::RetryHistory;
    ///
    /// assert_eq!(RetryHistory::default().hedges(), 0);
    /// ```
    pub fn hedges(&self) -> u32 {
        self.hedges
    }

    /// The attempt (numbered from 1, hedges included, in the order they were sent) whose outcome
    /// was returned, when hedges were sent.
    ///
    /// ```
    /// use tower_http_retry::RetryHistory;
    ///
    /// assert_eq!(RetryHistory::default().won_by(), None);
    /// ```
    pub fn won_by(&self) -> Option<u32> {
        self.won_by
    }

    /// Why the layer stopped.
    pub fn stop_reason(&self) -> StopReason {
        self.stop
    }

    /// The delay the last response asked for with `Retry-After`, if it held a valid one.
    ///
    /// When the layer returns a response because this delay was too long to wait, this is how the
    /// caller learns when to come back.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::Duration;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::history::StopReason;
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     let response = Response::builder()
    ///         .status(503)
    ///         .header("retry-after", "3600");
    ///     Ok::<_, Infallible>(response.body(String::new()).unwrap())
    /// });
    /// let client = Retry::new(server, RetryPolicy::default());
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    ///
    /// // An hour is past the policy's 60 s: the 503 comes back at once.
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// assert_eq!(history.stop_reason(), StopReason::RetryAfterTooLong);
    /// assert_eq!(history.retry_after(), Some(Duration::from_secs(3600)));
    /// # }
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.attempts.last().and_then(|a| a.retry_after)
    }

    /// The time spent waiting between attempts.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::Duration;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::backoff::{Backoff, Jitter};
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::builder().status(503).body(String::new()).unwrap())
    /// });
    /// let policy = RetryPolicy::default()
    ///     .max_attempts(3)
    ///     .backoff(Backoff::constant(Duration::from_secs(1)).jitter(Jitter::None));
    /// let client = Retry::new(server, policy);
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    ///
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// // Two waits of 1 s.
    /// assert_eq!(history.total_wait(), Duration::from_secs(2));
    /// # }
    /// ```
    pub fn total_wait(&self) -> Duration {
        self.attempts
            .iter()
            .filter_map(|a| a.wait)
            .fold(Duration::ZERO, |sum, w| sum.saturating_add(w.duration))
    }

    /// Attempts after the first (OpenTelemetry's `http.request.resend_count`), read from a response's
    /// extensions: 0 when the layer inserted no history.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// });
    /// let client = Retry::new(server, RetryPolicy::default());
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    ///
    /// // One attempt, nothing to retry, no key: the response passes through untouched.
    /// assert!(response.extensions().get::<RetryHistory>().is_none());
    /// assert_eq!(RetryHistory::resend_count(response.extensions()), 0);
    /// # }
    /// ```
    pub fn resend_count(extensions: &Extensions) -> u32 {
        extensions
            .get::<RetryHistory>()
            .map_or(0, |h| h.attempt_count().saturating_sub(1))
    }
}

impl fmt::Display for RetryHistory {
    /// One line: `503 (wait 212ms backoff), 503 (wait 1s retry-after), 200: the outcome was final`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, attempt) in self.attempts.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match attempt.outcome {
                AttemptOutcome::Status(status) => write!(f, "{}", status.as_u16())?,
                AttemptOutcome::Error(kind) => write!(f, "{kind}")?,
                AttemptOutcome::Interrupted => f.write_str("interrupted")?,
                #[cfg(feature = "grpc")]
                AttemptOutcome::Grpc(code) => write!(f, "{code}")?,
            }
            if let Some(wait) = attempt.wait {
                let why = match wait.reason {
                    WaitReason::Backoff => "backoff",
                    WaitReason::RetryAfter => "retry-after",
                    WaitReason::RateLimitReset => "rate-limit-reset",
                    WaitReason::GrpcPushback => "grpc-pushback",
                };
                write!(f, " (wait {:?} {why})", wait.duration)?;
            }
        }
        write!(f, ": {}", self.stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{ErrorKind, RetryClass};
    use http::StatusCode;

    #[test]
    fn reads_back_what_was_recorded() {
        let mut h = RetryHistory::default();
        h.push(AttemptRecord {
            outcome: AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE),
            decision: Decision::Retry(RetryClass::Transient),
            retry_after: Some(Duration::from_secs(2)),
            wait: Some(Wait {
                duration: Duration::from_secs(2),
                reason: WaitReason::RetryAfter,
            }),
        });
        h.push(AttemptRecord {
            outcome: AttemptOutcome::Error(ErrorKind::Reset),
            decision: Decision::Unsafe,
            retry_after: None,
            wait: None,
        });
        h.stop(StopReason::NotIdempotent);
        assert_eq!(h.attempt_count(), 2);
        assert_eq!(h.total_wait(), Duration::from_secs(2));
        assert_eq!(h.retry_after(), None, "the last attempt carried none");
        assert_eq!(
            h.to_string(),
            "503 (wait 2s retry-after), reset: the request may have taken effect and is not idempotent"
        );
        let mut ext = Extensions::new();
        assert_eq!(RetryHistory::resend_count(&ext), 0);
        ext.insert(h);
        assert_eq!(RetryHistory::resend_count(&ext), 1);
    }

    #[test]
    fn a_service_not_ready_has_its_own_words_and_label() {
        let reason = StopReason::NotReady;
        assert!(reason.gave_up());
        assert_eq!(reason.to_string(), "the service failed while getting ready");
        #[cfg(any(feature = "grpc", feature = "metrics"))]
        assert_eq!(reason.as_label(), "not_ready");
    }

    #[test]
    fn the_key_is_kept_but_never_printed_by_debug() {
        let mut h = RetryHistory::default();
        assert_eq!(h.idempotency_key(), None);
        h.set_idempotency_key(Some(HeaderValue::from_static("key-7f3a")));
        h.set_replayed(true);
        assert_eq!(h.idempotency_key().unwrap(), "key-7f3a");
        assert!(h.is_replayed());
        let debug = format!("{h:?}");
        assert!(!debug.contains("key-7f3a"), "{debug}");
        assert!(debug.contains("Sensitive"), "{debug}");
    }
}
