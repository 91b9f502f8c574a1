//! The error a retried call ends with.

use std::error::Error as StdError;
use std::fmt;

use crate::classify::ErrorKind;
use crate::history::{AttemptOutcome, RetryHistory, StopReason};

/// A type-erased error, as tower middleware passes them.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A call that ended without a response: the last attempt's error, or the deadline.
///
/// The [`source`](StdError::source) is the last attempt's own error when there was one, so
/// `downcast_ref` on it reaches the inner service's error type. The [`history`](Self::history) says
/// what every attempt produced and why the layer stopped.
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
    pub fn history(&self) -> &RetryHistory {
        &self.inner.history
    }

    /// The last attempt's own error (the inner service's, or this layer's attempt timeout), if any.
    pub fn inner(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.inner.source.as_deref()
    }

    /// Takes the last attempt's own error out.
    pub fn into_inner(self) -> Option<BoxError> {
        self.inner.source
    }

    /// Whether the total deadline ended the call: it passed during an attempt, or the next wait would
    /// have ended past it.
    pub fn is_deadline(&self) -> bool {
        self.inner.history.stop_reason() == StopReason::Deadline
    }

    /// Whether the last attempt ended because this layer's per-attempt timeout fired.
    pub fn is_attempt_timeout(&self) -> bool {
        self.last_outcome() == Some(AttemptOutcome::Error(ErrorKind::AttemptTimeout))
    }

    /// Whether the attempt limit, or the retry limit of the last outcome's class, ended the call.
    pub fn is_attempts_exhausted(&self) -> bool {
        self.inner.history.stop_reason() == StopReason::AttemptsExhausted
    }

    /// Whether the retry budget refused the retry that would have followed the last attempt.
    pub fn is_budget_exhausted(&self) -> bool {
        self.inner.history.stop_reason() == StopReason::BudgetExhausted
    }

    /// Whether the inner service failed while getting ready, before any attempt was made.
    pub fn is_not_ready(&self) -> bool {
        // A request held by pushback until its deadline passed also made no attempt, but has no source.
        self.inner.history.attempts().is_empty() && self.inner.source.is_some()
    }

    /// The kind of transport failure of the last attempt, if it failed with an error.
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
            0 => f.write_str("the service failed before the first attempt"),
            1 => write!(f, "request failed ({})", history.stop_reason()),
            n => write!(
                f,
                "request failed after {n} attempts ({})",
                history.stop_reason()
            ),
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
