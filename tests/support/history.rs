//! The retry history the layer attaches to every response it returns.

use tower_http_retry::RetryHistory;

/// The history of the call that produced `response`; panics if the layer attached none.
pub fn history<B>(response: &http::Response<B>) -> &RetryHistory {
    response
        .extensions()
        .get::<RetryHistory>()
        .expect("history")
}
