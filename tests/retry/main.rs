//! The layer's core: which calls are retried, after how long, and what the caller gets back; over real
//! sockets (`sockets`), with exact waits under tokio's paused clock (`timing`), and behind a local
//! timeout that answers 408 (`timeout_408`).

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

mod sockets;
mod timeout_408;
mod timing;
