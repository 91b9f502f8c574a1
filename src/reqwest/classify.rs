//! reqwest's errors, by type.

use crate::classify::ErrorKind;

/// The kind of a `reqwest::Error`, or `None` to look at its source.
pub(crate) fn kind(error: &::reqwest::Error) -> Option<ErrorKind> {
    if error.is_connect() {
        // A connect timeout is both: the request never left, so it is a connect failure.
        Some(ErrorKind::Connect)
    } else if error.is_timeout() {
        Some(ErrorKind::Timeout)
    } else if error.is_builder() || error.is_redirect() {
        // Another attempt would build the same bad request or follow the same loop.
        Some(ErrorKind::Other)
    } else {
        None
    }
}
