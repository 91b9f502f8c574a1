//! Idempotency keys and the before-retry hook: over real sockets (`keys`) and with exact waits under
//! tokio's paused clock (`timing`).

use retry_test_support::{durations, script, server};

/// The retry history the layer attaches to every response it returns (a few lines of this crate's
/// types, so not in the support crate).
mod history {
    use tower_http_retry::RetryHistory;

    /// The history of the call that produced `response`; panics if the layer attached none.
    pub fn history<B>(response: &http::Response<B>) -> &RetryHistory {
        response
            .extensions()
            .get::<RetryHistory>()
            .expect("history")
    }
}

mod attached;
mod keys;
mod timing;
