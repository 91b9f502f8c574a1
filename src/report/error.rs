//! The error a retried call ends with.

use std::error::Error as StdError;
use std::fmt;

use crate::classify::ErrorKind;
use crate::report::history::{AttemptOutcome, RetryHistory, StopReason};
use crate::BoxError;

/// A call that ended without a response: the last attempt's error, or the deadline.
///
/// The [`source`](StdError::source) is the last attempt's own error when there was one, so
/// `downcast_ref` on it reaches the inner service's error type. The [`history`](Self::history) says
/// what every attempt produced and why the layer stopped. `Display` says how the call ended and, after
/// a colon, that error's own message: `request failed after 4 attempts (the attempt limit was
/// reached): connection refused`.
///
/// ```
/// # use tower_http_retry::Error;
/// fn report(error: &Error) {
///     if error.is_deadline() {
///         eprintln!("gave up at the deadline after {} attempts", error.history().attempt_count());
///     } else if let Some(inner) = error.inner() {
///         eprintln!("the last attempt failed: {inner}");
///     }
/// }
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    source: Option<BoxError>,
    history: RetryHistory,
}

/// How the call ended, set by the constructor; always the kind the history's stop reason implies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The total deadline passed.
    Deadline,
    /// The inner service failed while getting ready.
    NotReady,
    /// The throttle refused to send the request.
    Shed,
    /// The attempt limit, or the class's retry limit, was reached.
    AttemptsExhausted,
    /// The retry budget refused the retry.
    BudgetExhausted,
    /// The request body could not be sent again.
    BodyNotReplayable,
    /// Any other reason to return the last attempt's error: it was final, the request was not
    /// idempotent, `Retry-After` was too long, or a check said stop.
    Stopped,
}

impl Kind {
    fn of(reason: StopReason) -> Self {
        match reason {
            StopReason::Deadline => Kind::Deadline,
            StopReason::NotReady => Kind::NotReady,
            StopReason::Shed => Kind::Shed,
            StopReason::AttemptsExhausted => Kind::AttemptsExhausted,
            StopReason::BudgetExhausted => Kind::BudgetExhausted,
            StopReason::BodyNotReplayable(_) => Kind::BodyNotReplayable,
            _ => Kind::Stopped,
        }
    }
}

impl Error {
    /// The total deadline passed: during an attempt (canceled, recorded as
    /// [`Interrupted`](AttemptOutcome::Interrupted)), between attempts, or before the request's turn
    /// at the throttle. Records [`StopReason::Deadline`].
    pub(crate) fn deadline(mut history: RetryHistory) -> Self {
        history.stop(StopReason::Deadline);
        Self::with(Kind::Deadline, None, history)
    }

    /// The inner service's `poll_ready` failed with `error`: before the first attempt (`history` is
    /// then empty) or before a retry (`history` holds the attempts made). Records
    /// [`StopReason::NotReady`], so the history says so whether or not the caller did.
    pub(crate) fn not_ready(error: BoxError, mut history: RetryHistory) -> Self {
        history.stop(StopReason::NotReady);
        Self::with(Kind::NotReady, Some(error), history)
    }

    /// The throttle shed the request; `shed` is the [`Shed`](crate::throttle::Shed) that says when
    /// to come back. Records [`StopReason::Shed`].
    pub(crate) fn shed(shed: BoxError, mut history: RetryHistory) -> Self {
        history.stop(StopReason::Shed);
        Self::with(Kind::Shed, Some(shed), history)
    }

    /// The call stopped for the reason `history` already records, with the last attempt's error
    /// (`None` when that attempt produced none, a lost body before any say).
    pub(crate) fn stopped(source: Option<BoxError>, history: RetryHistory) -> Self {
        Self::with(Kind::of(history.stop_reason()), source, history)
    }

    fn with(kind: Kind, source: Option<BoxError>, history: RetryHistory) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                source,
                history,
            }),
        }
    }

    /// The record of the attempts and why the layer stopped.
    ///
    /// ```
    /// use std::io;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::history::StopReason;
    /// use tower_http_retry::{Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Err::<Response<String>, _>(io::Error::from(io::ErrorKind::ConnectionReset))
    /// });
    /// let charge = Request::post("http://pay.example/v1/charges")
    ///     .body(String::from("{}"))
    ///     .unwrap();
    /// let client = Retry::new(server, RetryPolicy::default());
    /// let error = client.oneshot(charge).await.unwrap_err();
    ///
    /// // The charge may have gone through: it was not sent again.
    /// assert_eq!(error.history().attempt_count(), 1);
    /// assert_eq!(error.history().stop_reason(), StopReason::NotIdempotent);
    /// # }
    /// ```
    pub fn history(&self) -> &RetryHistory {
        &self.inner.history
    }

    /// The last attempt's own error (the inner service's, or this layer's attempt timeout), if any.
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
    ///     Err::<Response<String>, _>(io::Error::other("proxy authentication failed"))
    /// });
    /// let client = Retry::new(server, RetryPolicy::default());
    /// let error = client.oneshot(Request::default()).await.unwrap_err();
    ///
    /// let cause = error.inner().unwrap().downcast_ref::<io::Error>().unwrap();
    /// assert_eq!(cause.to_string(), "proxy authentication failed");
    /// # }
    /// ```
    pub fn inner(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.inner.source.as_deref()
    }

    /// Takes the last attempt's own error out.
    ///
    /// ```
    /// use std::io;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::{BoxError, Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Err::<Response<String>, _>(io::Error::from(io::ErrorKind::ConnectionRefused))
    /// });
    /// let client = Retry::new(server, RetryPolicy::default());
    /// let error = client.oneshot(Request::default()).await.unwrap_err();
    ///
    /// let inner: BoxError = error.into_inner().unwrap();
    /// let cause: Box<io::Error> = inner.downcast().unwrap();
    /// assert_eq!(cause.kind(), io::ErrorKind::ConnectionRefused);
    /// # }
    /// ```
    pub fn into_inner(self) -> Option<BoxError> {
        self.inner.source
    }

    /// Whether the total deadline ended the call: it passed during an attempt, or the next wait would
    /// have ended past it.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::future::pending;
    /// use std::time::Duration;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::history::AttemptOutcome;
    /// use tower_http_retry::{Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let silent =
    ///     service_fn(|_: Request<String>| pending::<Result<Response<String>, Infallible>>());
    /// let policy = RetryPolicy::default().deadline(Duration::from_secs(5));
    /// let client = Retry::new(silent, policy);
    /// let error = client.oneshot(Request::default()).await.unwrap_err();
    ///
    /// assert!(error.is_deadline());
    /// // The attempt in flight was canceled: there is no error of its own.
    /// assert!(error.inner().is_none());
    /// let attempt = &error.history().attempts()[0];
    /// assert_eq!(attempt.outcome, AttemptOutcome::Interrupted);
    /// # }
    /// ```
    pub fn is_deadline(&self) -> bool {
        matches!(self.inner.kind, Kind::Deadline)
    }

    /// Whether the last attempt ended because its timeout fired: this layer's per-attempt timeout, or
    /// the client's own timeout on the request (reqwest's `timeout` and `read_timeout`, with the
    /// `reqwest` feature), both classified [`ErrorKind::AttemptTimeout`].
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::Duration;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::classify::ErrorKind;
    /// use tower_http_retry::{Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let slow = service_fn(|_: Request<String>| async {
    ///     tokio::time::sleep(Duration::from_secs(60)).await;
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// });
    /// let policy = RetryPolicy::default()
    ///     .attempt_timeout(Duration::from_secs(1))
    ///     .max_attempts(2);
    /// let client = Retry::new(slow, policy);
    /// let error = client.oneshot(Request::default()).await.unwrap_err();
    ///
    /// assert!(error.is_attempt_timeout());
    /// assert_eq!(error.kind(), Some(ErrorKind::AttemptTimeout));
    /// assert_eq!(error.history().attempt_count(), 2);
    /// # }
    /// ```
    pub fn is_attempt_timeout(&self) -> bool {
        self.last_outcome() == Some(AttemptOutcome::Error(ErrorKind::AttemptTimeout))
    }

    /// Whether the attempt limit, or the retry limit of the last outcome's class, ended the call.
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
    /// let policy = RetryPolicy::default().max_attempts(3);
    /// let client = Retry::new(server, policy);
    /// let error = client.oneshot(Request::default()).await.unwrap_err();
    ///
    /// assert!(error.is_attempts_exhausted());
    /// assert_eq!(error.history().attempt_count(), 3);
    /// # }
    /// ```
    pub fn is_attempts_exhausted(&self) -> bool {
        matches!(self.inner.kind, Kind::AttemptsExhausted)
    }

    /// Whether the retry budget refused the retry that would have followed the last attempt.
    ///
    /// ```
    /// use std::io;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::budget::RetryBudget;
    /// use tower_http_retry::{Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Err::<Response<String>, _>(io::Error::from(io::ErrorKind::ConnectionReset))
    /// });
    /// let no_retries = RetryBudget::builder().floor(0).ratio(0.0).build();
    /// let policy = RetryPolicy::default().retry_budget(no_retries);
    /// let client = Retry::new(server, policy);
    /// let error = client.oneshot(Request::default()).await.unwrap_err();
    ///
    /// assert!(error.is_budget_exhausted());
    /// assert_eq!(error.history().attempt_count(), 1);
    /// # }
    /// ```
    pub fn is_budget_exhausted(&self) -> bool {
        matches!(self.inner.kind, Kind::BudgetExhausted)
    }

    /// Whether the [throttle](crate::throttle) shed the request: it was not sent (again), because
    /// its turn was further away than shed mode allows or the server's line was full. The source is
    /// a [`Shed`](crate::throttle::Shed) that says when to come back.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::Duration;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::history::StopReason;
    /// use tower_http_retry::throttle::Throttle;
    /// use tower_http_retry::{Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// });
    /// let throttle = Throttle::new().shed(Duration::ZERO);
    /// throttle.hold(&"http://api.example/".parse::<http::Uri>().unwrap(), Duration::from_secs(3));
    /// let client = Retry::new(server, RetryPolicy::default().throttle(throttle));
    /// let request = Request::get("http://api.example/").body(String::new()).unwrap();
    /// let error = client.oneshot(request).await.unwrap_err();
    ///
    /// assert!(error.is_shed());
    /// assert_eq!(error.history().stop_reason(), StopReason::Shed);
    /// assert_eq!(error.history().attempt_count(), 0, "nothing was sent");
    /// # }
    /// ```
    pub fn is_shed(&self) -> bool {
        matches!(self.inner.kind, Kind::Shed)
    }

    /// Whether the inner service failed while getting ready, before the first attempt or before a
    /// retry ([`StopReason::NotReady`]); the source is its error.
    ///
    /// ```
    /// use std::io;
    /// use std::task::{Context, Poll};
    /// use http::{Request, Response};
    /// use tower::{Service, ServiceExt};
    /// use tower_http_retry::{Retry, RetryPolicy};
    ///
    /// /// A client whose connection pool has shut down.
    /// #[derive(Clone)]
    /// struct Closed;
    ///
    /// impl Service<Request<String>> for Closed {
    ///     type Response = Response<String>;
    ///     type Error = io::Error;
    ///     type Future = std::future::Ready<Result<Response<String>, io::Error>>;
    ///
    ///     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
    ///         Poll::Ready(Err(io::ErrorKind::NotConnected.into()))
    ///     }
    ///
    ///     fn call(&mut self, _: Request<String>) -> Self::Future {
    ///         unreachable!("never ready")
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let client = Retry::new(Closed, RetryPolicy::default());
    /// let error = client.oneshot(Request::default()).await.unwrap_err();
    /// assert!(error.is_not_ready());
    /// assert_eq!(error.history().attempt_count(), 0);
    /// # }
    /// ```
    pub fn is_not_ready(&self) -> bool {
        matches!(self.inner.kind, Kind::NotReady)
    }

    /// Whether the request body could not be sent again
    /// ([`StopReason::BodyNotReplayable`]), so the call ended with the last attempt's error.
    ///
    /// ```
    /// use std::io;
    /// use bytes::Bytes;
    /// use http::{Request, Response};
    /// use http_body_util::Full;
    /// use tower::{service_fn, ServiceBuilder, ServiceExt};
    /// use tower_http_retry::body::{ReplayBody, ReplayBodyLayer};
    /// use tower_http_retry::{RetryLayer, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let reset = service_fn(|_: Request<ReplayBody<Full<Bytes>>>| async {
    ///     Err::<Response<String>, _>(io::Error::from(io::ErrorKind::ConnectionRefused))
    /// });
    /// let client = ServiceBuilder::new()
    ///     .layer(ReplayBodyLayer::new().limit(8))
    ///     .layer(RetryLayer::new(RetryPolicy::default()))
    ///     .service(reset);
    /// let upload = Full::new(Bytes::from_static(b"sixteen bytes..."));
    /// let request = Request::put("http://api.example/v1/files/7").body(upload).unwrap();
    /// let error = client.oneshot(request).await.unwrap_err();
    ///
    /// assert!(error.is_body_not_replayable());
    /// assert_eq!(error.history().attempt_count(), 1);
    /// # }
    /// ```
    pub fn is_body_not_replayable(&self) -> bool {
        matches!(self.inner.kind, Kind::BodyNotReplayable)
    }

    /// The kind of transport failure of the last attempt, if it failed with an error.
    ///
    /// ```
    /// use std::io;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::classify::ErrorKind;
    /// use tower_http_retry::{Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Err::<Response<String>, _>(io::Error::from(io::ErrorKind::ConnectionRefused))
    /// });
    /// let charge = Request::post("http://pay.example/v1/charges")
    ///     .body(String::from("{}"))
    ///     .unwrap();
    /// let client = Retry::new(server, RetryPolicy::default());
    /// let error = client.oneshot(charge).await.unwrap_err();
    ///
    /// assert_eq!(error.kind(), Some(ErrorKind::Connect));
    /// // Never sent, so retried even though it is a POST.
    /// assert_eq!(error.history().attempt_count(), 4);
    /// # }
    /// ```
    pub fn kind(&self) -> Option<ErrorKind> {
        match self.last_outcome()? {
            AttemptOutcome::Error(kind) => Some(kind),
            _ => None,
        }
    }

    fn last_outcome(&self) -> Option<AttemptOutcome> {
        self.inner.history.attempts().last().map(|a| a.outcome)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("tower_http_retry::Error")
            .field("kind", &self.inner.kind)
            .field("source", &self.inner.source)
            .field("history", &self.inner.history)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let history = &self.inner.history;
        match (history.attempt_count(), self.inner.kind) {
            (0, Kind::Shed) => f.write_str("request shed by the throttle before any attempt"),
            (0, Kind::Deadline) => {
                f.write_str("request not sent: its turn would come after the deadline")
            }
            (0, _) => f.write_str("the service failed before the first attempt"),
            (1, _) => write!(f, "request failed ({})", history.stop_reason()),
            (n, _) => write!(
                f,
                "request failed after {n} attempts ({})",
                history.stop_reason()
            ),
        }?;
        match &self.inner.source {
            Some(source) => write!(f, ": {source}"),
            None => Ok(()),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::body::NotReplayable;
    use crate::classify::Decision;
    use crate::report::history::AttemptRecord;

    fn failed_once(kind: ErrorKind) -> RetryHistory {
        let mut history = RetryHistory::default();
        history.push(AttemptRecord {
            outcome: AttemptOutcome::Error(kind),
            decision: Decision::Done,
            retry_after: None,
            wait: None,
        });
        history
    }

    fn stopped(reason: StopReason) -> Error {
        let mut history = failed_once(ErrorKind::Reset);
        history.stop(reason);
        Error::stopped(Some(io::Error::other("reset").into()), history)
    }

    /// The names of the `is_*` queries that hold.
    fn queries(error: &Error) -> Vec<&'static str> {
        [
            ("deadline", error.is_deadline()),
            ("attempt_timeout", error.is_attempt_timeout()),
            ("attempts_exhausted", error.is_attempts_exhausted()),
            ("budget_exhausted", error.is_budget_exhausted()),
            ("shed", error.is_shed()),
            ("not_ready", error.is_not_ready()),
            ("body_not_replayable", error.is_body_not_replayable()),
        ]
        .into_iter()
        .filter_map(|(name, holds)| holds.then_some(name))
        .collect()
    }

    #[test]
    fn each_stop_reason_answers_its_own_query_only() {
        let cases = [
            (StopReason::Deadline, vec!["deadline"]),
            (StopReason::AttemptsExhausted, vec!["attempts_exhausted"]),
            (StopReason::BudgetExhausted, vec!["budget_exhausted"]),
            (StopReason::Shed, vec!["shed"]),
            (StopReason::NotReady, vec!["not_ready"]),
            (
                StopReason::BodyNotReplayable(NotReplayable::StillSending),
                vec!["body_not_replayable"],
            ),
            (StopReason::Finished, vec![]),
            (StopReason::NotIdempotent, vec![]),
            (StopReason::RetryAfterTooLong, vec![]),
            (StopReason::CheckStopped, vec![]),
            (StopReason::CheckTimedOut, vec![]),
        ];
        for (reason, expected) in cases {
            assert_eq!(queries(&stopped(reason)), expected, "{reason:?}");
        }
    }

    #[test]
    fn an_attempt_timeout_is_the_last_attempts_error_whatever_stopped_the_call() {
        let mut history = failed_once(ErrorKind::AttemptTimeout);
        history.stop(StopReason::AttemptsExhausted);
        let error = Error::stopped(None, history);
        assert_eq!(queries(&error), ["attempt_timeout", "attempts_exhausted"]);
    }

    #[test]
    fn the_named_constructors_record_their_stop_reason() {
        let deadline = Error::deadline(RetryHistory::default());
        assert_eq!(deadline.history().stop_reason(), StopReason::Deadline);
        assert_eq!(queries(&deadline), ["deadline"]);
        let shed = Error::shed(io::Error::other("shed").into(), RetryHistory::default());
        assert_eq!(shed.history().stop_reason(), StopReason::Shed);
        assert_eq!(queries(&shed), ["shed"]);
    }

    #[test]
    fn a_service_not_ready_for_a_retry_is_not_ready() {
        let history = failed_once(ErrorKind::Reset);
        let error = Error::not_ready(io::Error::other("pool closed").into(), history);
        assert!(error.is_not_ready());
        assert_eq!(error.history().stop_reason(), StopReason::NotReady);
        assert_eq!(
            error.to_string(),
            "request failed (the service failed while getting ready): pool closed"
        );
    }

    #[test]
    fn a_service_not_ready_for_the_first_attempt_says_so() {
        let error = Error::not_ready(
            io::Error::other("pool closed").into(),
            RetryHistory::default(),
        );
        assert!(error.is_not_ready());
        assert_eq!(
            error.to_string(),
            "the service failed before the first attempt: pool closed"
        );
    }

    #[test]
    fn a_request_held_past_its_deadline_is_not_a_service_not_ready() {
        let error = Error::deadline(RetryHistory::default());
        assert_eq!(queries(&error), ["deadline"]);
        assert_eq!(
            error.to_string(),
            "request not sent: its turn would come after the deadline"
        );
    }
}
