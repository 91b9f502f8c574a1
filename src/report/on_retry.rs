//! What the [`on_retry`](crate::RetryPolicy::on_retry) hook is told: each retry, and how a call that
//! retried or gave up ended.

use crate::classify::RetryClass;
use crate::report::history::{AttemptOutcome, StopReason};
use crate::wait::Wait;

/// The hook's signature.
pub(crate) type OnRetryFn = dyn Fn(&RetryEvent) + Send + Sync;

/// A retry the layer is about to wait for, or the end of a call that retried or gave up: what the
/// [`on_retry`](crate::RetryPolicy::on_retry) hook sees.
///
/// Both variants may gain fields: match them with `..`.
///
/// ```
/// use std::convert::Infallible;
/// use std::sync::{Arc, Mutex};
/// use http::{Request, Response, StatusCode};
/// use tower::{service_fn, ServiceExt};
/// use tower_http_retry::history::{AttemptOutcome, StopReason};
/// use tower_http_retry::{Retry, RetryEvent, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let server = service_fn(|_: Request<String>| async {
///     Ok::<_, Infallible>(Response::builder().status(503).body(String::new()).unwrap())
/// });
/// let events = Arc::new(Mutex::new(Vec::new()));
/// let log = events.clone();
/// let policy = RetryPolicy::default().max_attempts(2).on_retry(move |event| {
///     log.lock().unwrap().push(*event);
/// });
/// Retry::new(server, policy).oneshot(Request::new(String::new())).await.unwrap();
///
/// let events = events.lock().unwrap();
/// assert!(matches!(
///     events[0],
///     RetryEvent::Retry { attempt: 1, outcome: AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE), .. }
/// ));
/// assert!(matches!(
///     events[1],
///     RetryEvent::Stop { attempts: 2, reason: StopReason::AttemptsExhausted, .. }
/// ));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryEvent {
    /// Attempt `attempt` ended with `outcome`, classified `class`; the next attempt leaves after
    /// `wait`.
    #[non_exhaustive]
    Retry {
        /// The attempt that just ended: 1 for the first.
        attempt: u32,
        /// What it produced.
        outcome: AttemptOutcome,
        /// How it was classified.
        class: RetryClass,
        /// How long the layer waits before the next attempt, and what set that length; the
        /// [throttle](crate::throttle), when it paces the server, may hold the attempt longer.
        wait: Wait,
    },
    /// A hedge leaves: attempt `attempt` (every attempt sent counts, the first is 1), a copy of the
    /// attempt still in flight, `after` the attempt before it (see [`hedge`](crate::hedge)).
    #[non_exhaustive]
    Hedge {
        /// The hedge's attempt number.
        attempt: u32,
        /// How long after the attempt before it it leaves.
        after: std::time::Duration,
    },
    /// The call ends: once per call that retried or that the layer gave up on (never for a call that
    /// succeeded at once).
    #[non_exhaustive]
    Stop {
        /// Attempts made, the first included.
        attempts: u32,
        /// The last attempt's outcome; none when the call ended before any attempt finished.
        outcome: Option<AttemptOutcome>,
        /// Why the layer stopped; [`StopReason::gave_up`] tells a give-up from a final outcome.
        reason: StopReason,
    },
}
