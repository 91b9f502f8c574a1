//! What a check before a retry did, as the [`RetryHistory`](crate::RetryHistory) records it.

use http::StatusCode;

use crate::report::outcome::AttemptOutcome;

/// One check run before a retry ([`check`](crate::check)): after which attempt, what its own requests
/// produced (they are not attempts), and what it answered.
///
/// ```
/// use tower_http_retry::history::{CheckAnswer, CheckRecord};
/// use tower_http_retry::RetryHistory;
///
/// fn checked_and_found(history: &RetryHistory) -> bool {
///     history
///         .checks()
///         .iter()
///         .any(|check: &CheckRecord| matches!(check.answer, CheckAnswer::Respond(_)))
/// }
/// assert!(!checked_and_found(&RetryHistory::default()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckRecord {
    /// The attempt whose outcome was checked, counting from 1.
    pub after_attempt: u32,
    /// The outcome of each request the check sent, in order.
    pub requests: Vec<AttemptOutcome>,
    /// What the check answered.
    pub answer: CheckAnswer,
}

/// What a check answered, as recorded.
///
/// ```
/// use http::StatusCode;
/// use tower_http_retry::history::CheckAnswer;
///
/// let found = CheckAnswer::Respond(StatusCode::OK);
/// assert_ne!(found, CheckAnswer::Retry);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckAnswer {
    /// Send the request again.
    Retry,
    /// Stop, with the last attempt's outcome.
    Stop,
    /// Stop, with the response the check returned (of this status).
    Respond(StatusCode),
    /// The call's deadline passed while the check ran.
    Interrupted,
}
