//! The throttle: pacing against the project's own limiters (`pacing`) and regressions found outside
//! (`regressions`), all under tokio's paused clock; one schedule shared by a fleet through a store
//! (`fleet`: paused clock in process, real time on Redis).

use retry_test_support::durations;

/// The shared limiters, with a `drive` that tells the crate's shed errors apart (the support crate
/// cannot name `tower_http_retry::Error`).
mod limiters {
    pub use retry_test_support::limiters::*;

    use std::time::Duration;

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::Full;
    use retry_test_support::BoxError;
    use tower::Service;

    /// [`retry_test_support::limiters::drive`], shed meaning the crate's `Error::is_shed`.
    pub async fn drive<S, B>(client: S, uri: &str, offsets: &[Duration]) -> Vec<Ended>
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send,
        S::Error: Into<BoxError> + Send,
        B: http_body::Body + Send + 'static,
    {
        retry_test_support::limiters::drive(client, uri, offsets, |error| {
            error
                .downcast_ref::<tower_http_retry::Error>()
                .is_some_and(tower_http_retry::Error::is_shed)
        })
        .await
    }
}

#[cfg(feature = "redis")]
use retry_test_support::redis_server;

mod fleet;
mod order;
mod pacing;
mod regressions;
mod tenancy;
