//! The error a store's setup or a call to it can end with.

use std::error::Error as StdError;
use std::fmt;

/// A [`Store`](super::Store) could not be set up, or a call to it failed or timed out.
///
/// Calls made for requests never surface it: the budget and the throttle fall back to the state of
/// the process. It is returned by [`Store::redis`](super::Store) for a URL it cannot use.
///
/// ```
/// use tower_http_retry::store::StoreError;
///
/// fn report(error: &StoreError) -> String {
///     format!("fleet store: {error}")
/// }
/// # let _ = report;
/// ```
#[derive(Debug)]
pub struct StoreError {
    message: String,
}

impl StoreError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for StoreError {}
