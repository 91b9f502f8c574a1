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
    source: Option<BoxError>,
    history: RetryHistory,
}

impl Error {
    pub(crate) fn new(source: Option<BoxError>, history: RetryHistory) -> Self {
        Self {
            inner: Box::new(Inner { source, history }),
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
        self.inner.history.stop_reason() == StopReason::Deadline
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
        self.inner.history.stop_reason() == StopReason::AttemptsExhausted
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
        self.inner.history.stop_reason() == StopReason::BudgetExhausted
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
        self.inner.history.stop_reason() == StopReason::Shed
    }

    /// Whether the inner service failed while getting ready, before any attempt was made.
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
        // A request held by the throttle until its deadline passed, or shed, also made no attempt.
        self.inner.history.attempts().is_empty() && self.inner.source.is_some() && !self.is_shed()
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
            .field("source", &self.inner.source)
            .field("history", &self.inner.history)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let history = &self.inner.history;
        match history.attempt_count() {
            0 if self.is_shed() => f.write_str("request shed by the throttle before any attempt"),
            0 if history.stop_reason() == StopReason::Deadline => {
                f.write_str("request not sent: its turn would come after the deadline")
            }
            0 => f.write_str("the service failed before the first attempt"),
            1 => write!(f, "request failed ({})", history.stop_reason()),
            n => write!(
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
