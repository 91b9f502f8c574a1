//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (the `metrics` feature): the
//! application installs a recorder (Prometheus, OpenTelemetry, ...) and the layer's counters and
//! histograms go there. Without the feature every function here is empty and compiles away.
//!
//! Labels are drawn from the crate's own enums only (class, stop reason, wait reason): never a header
//! value, a path, a query or a host, so the number of series stays fixed whatever the traffic.

#[cfg(feature = "metrics")]
use std::time::Duration;

#[cfg(feature = "metrics")]
use crate::classify::RetryClass;
#[cfg(feature = "metrics")]
use crate::report::history::StopReason;
#[cfg(feature = "metrics")]
use crate::wait::{Wait, WaitReason};

/// Retries sent, by class (counter, `{retry}`; label `class`).
///
/// The names are what a recorder sees; a test or dashboard can use the constants instead of the text:
///
/// ```
/// use tower_http_retry::metrics;
///
/// assert_eq!(metrics::RETRIES, "http.client.retries");
/// assert_eq!(metrics::GRPC_CALL_RETRIES, "grpc.client.call.retries");
/// ```
pub const RETRIES: &str = "http.client.retries";
/// Calls, by why the layer returned (counter, `{call}`; label `stop_reason`).
pub const CALLS: &str = "http.client.retry.calls";
/// Retries the retry budget refused (counter, `{retry}`; label `class`).
pub const BUDGET_REFUSALS: &str = "http.client.retry.budget_refusals";
/// Requests, first attempts and retries, that waited in the [throttle](crate::throttle)'s line for
/// their turn (counter, `{hold}`).
pub const THROTTLE_HOLDS: &str = "http.client.retry.throttle_holds";
/// Each wait before a retry (histogram, seconds; label `reason`).
pub const WAIT: &str = "http.client.retry.wait";
/// Retries per call that retried (histogram, `{retry}`): gRPC A96's `grpc.client.call.retries` for
/// HTTP; a gRPC policy records [`GRPC_CALL_RETRIES`] instead.
pub const CALL_RETRIES: &str = "http.client.call.retries";
/// Total wait per call that retried (histogram, seconds): A96's `grpc.client.call.retry_delay` for
/// HTTP; a gRPC policy records [`GRPC_CALL_RETRY_DELAY`] instead.
pub const CALL_RETRY_DELAY: &str = "http.client.call.retry_delay";
/// gRPC A96's retries per call, recorded instead of [`CALL_RETRIES`] under a gRPC policy.
pub const GRPC_CALL_RETRIES: &str = "grpc.client.call.retries";
/// gRPC A96's total wait per call, recorded instead of [`CALL_RETRY_DELAY`] under a gRPC policy.
pub const GRPC_CALL_RETRY_DELAY: &str = "grpc.client.call.retry_delay";

/// Gives the installed recorder each metric's unit and description. Call it once, after installing
/// the recorder (recorders keep descriptions from when they are installed on). Without the `metrics`
/// feature it does nothing, so the call compiles with the feature on or off.
///
/// ```
/// tower_http_retry::metrics::describe();
/// ```
pub fn describe() {
    #[cfg(feature = "metrics")]
    describe_all();
}

#[cfg(feature = "metrics")]
fn describe_all() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(RETRIES, Unit::Count, "Retries sent, by class");
    describe_counter!(CALLS, Unit::Count, "Calls, by why the retry layer returned");
    describe_counter!(
        BUDGET_REFUSALS,
        Unit::Count,
        "Retries the retry budget refused"
    );
    describe_counter!(
        THROTTLE_HOLDS,
        Unit::Count,
        "Requests that waited in the throttle's line"
    );
    describe_histogram!(WAIT, Unit::Seconds, "Each wait before a retry, by reason");
    for name in [CALL_RETRIES, GRPC_CALL_RETRIES] {
        describe_histogram!(name, Unit::Count, "Retries per call that retried");
    }
    for name in [CALL_RETRY_DELAY, GRPC_CALL_RETRY_DELAY] {
        describe_histogram!(name, Unit::Seconds, "Total wait per call that retried");
    }
}

/// A retry of `class` leaves after `wait`.
#[cfg(feature = "metrics")]
pub(crate) fn retry(class: RetryClass, wait: Wait) {
    metrics::counter!(RETRIES, "class" => class_label(class)).increment(1);
    metrics::histogram!(WAIT, "reason" => wait_label(wait.reason)).record(wait.duration);
}

/// A request starts waiting in the throttle's line.
#[cfg(feature = "metrics")]
pub(crate) fn throttle_hold() {
    metrics::counter!(THROTTLE_HOLDS).increment(1);
}

/// A call ends: why, after how many attempts, having waited how long in all. `class` is the last
/// decision's class, for a budget refusal.
#[cfg(feature = "metrics")]
pub(crate) fn call_ended(
    reason: StopReason,
    class: Option<RetryClass>,
    attempts: u32,
    waited: impl FnOnce() -> Duration,
    grpc: bool,
) {
    metrics::counter!(CALLS, "stop_reason" => stop_label(reason)).increment(1);
    if reason == StopReason::BudgetExhausted {
        let class = class.map_or("unknown", class_label);
        metrics::counter!(BUDGET_REFUSALS, "class" => class).increment(1);
    }
    // As A96: a call that did not retry records no retry count.
    if attempts > 1 {
        let (retries, delay) = match grpc {
            true => (GRPC_CALL_RETRIES, GRPC_CALL_RETRY_DELAY),
            false => (CALL_RETRIES, CALL_RETRY_DELAY),
        };
        metrics::histogram!(retries).record(f64::from(attempts - 1));
        metrics::histogram!(delay).record(waited());
    }
}

/// A call whose first attempt needed no retry: the success path records one counter.
#[cfg(feature = "metrics")]
pub(crate) fn finished_at_once() {
    // Literal labels make a static key: no allocation on the success path.
    metrics::counter!(CALLS, "stop_reason" => "finished").increment(1);
}

#[cfg(feature = "metrics")]
fn class_label(class: RetryClass) -> &'static str {
    match class {
        RetryClass::Throttling => "throttling",
        RetryClass::Transient => "transient",
    }
}

#[cfg(feature = "metrics")]
fn stop_label(reason: StopReason) -> &'static str {
    match reason {
        StopReason::Finished => "finished",
        StopReason::NotIdempotent => "not_idempotent",
        StopReason::AttemptsExhausted => "attempts_exhausted",
        StopReason::Deadline => "deadline",
        StopReason::RetryAfterTooLong => "retry_after_too_long",
        StopReason::BodyNotReplayable(_) => "body_not_replayable",
        StopReason::BudgetExhausted => "budget_exhausted",
        StopReason::Shed => "shed",
        StopReason::CheckStopped => "check_stopped",
        StopReason::CheckAnswered => "check_answered",
        StopReason::CheckTimedOut => "check_timed_out",
    }
}

#[cfg(feature = "metrics")]
fn wait_label(reason: WaitReason) -> &'static str {
    match reason {
        WaitReason::Backoff => "backoff",
        WaitReason::RetryAfter => "retry_after",
        WaitReason::RateLimitReset => "rate_limit_reset",
        WaitReason::GrpcPushback => "grpc_pushback",
    }
}

// Without the feature: the same calls, doing nothing.
#[cfg(not(feature = "metrics"))]
pub(crate) fn retry(_: crate::classify::RetryClass, _: crate::wait::Wait) {}
#[cfg(not(feature = "metrics"))]
pub(crate) fn throttle_hold() {}
#[cfg(not(feature = "metrics"))]
pub(crate) fn call_ended(
    _: crate::report::history::StopReason,
    _: Option<crate::classify::RetryClass>,
    _: u32,
    _: impl FnOnce() -> std::time::Duration,
    _: bool,
) {
}
#[cfg(not(feature = "metrics"))]
pub(crate) fn finished_at_once() {}
