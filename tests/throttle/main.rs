//! The throttle: pacing against the project's own limiters (`pacing`) and regressions found outside
//! (`regressions`), all under tokio's paused clock; one schedule shared by a fleet through a store
//! (`fleet`: paused clock in process, real time on Redis).

use retry_test_support::durations;

use retry_test_support::limiters;

/// Whether a call ended because the throttle shed it: what the limiters' `drive` counts apart (the
/// support crate cannot name this crate's `Error`).
fn is_shed(error: &retry_test_support::BoxError) -> bool {
    error
        .downcast_ref::<tower_http_retry::Error>()
        .is_some_and(tower_http_retry::Error::is_shed)
}

#[cfg(feature = "redis")]
use retry_test_support::redis_server;

mod fleet;
mod order;
mod pacing;
mod regressions;
mod tenancy;
