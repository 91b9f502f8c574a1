//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (the `metrics` feature): the
//! application installs a recorder (Prometheus, OpenTelemetry, ...) and the layer's counters and
//! histograms go there. Without the feature every function here is empty and compiles away.
//!
//! Labels are drawn from the crate's own enums only (class, stop reason, wait reason): never a header
//! value, a path, a query or a host, so the number of series stays fixed whatever the traffic. gRPC's
//! A96 instruments are the exception A96 defines: [`GRPC_METHOD`] is the method from the service
//! definition (bounded by the services the client calls) and [`GRPC_TARGET`] the channel's target.
//!
//! `http.client.retries` counts gRPC retries too, per retry and class; `grpc.client.call.retries` counts
//! the same retries per call (A96's instrument). Neither counts a retry twice, but adding the two does.

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
/// HTTP. Not recorded under a gRPC policy: `grpc::GrpcRetryLayer` records
/// A96's own instruments ([`GRPC_CALL_RETRIES`]), with their labels.
pub const CALL_RETRIES: &str = "http.client.call.retries";
/// Total wait per call that retried (histogram, seconds): A96's `grpc.client.call.retry_delay` for
/// HTTP. Not recorded under a gRPC policy, as [`CALL_RETRIES`].
pub const CALL_RETRY_DELAY: &str = "http.client.call.retry_delay";
/// gRPC A96's retries per call that retried (histogram, `{retry}`; labels [`GRPC_METHOD`],
/// [`GRPC_TARGET`]), recorded by `grpc::GrpcRetryLayer`: the retries of
/// attempts the server may have seen; those it never saw are [`GRPC_CALL_TRANSPARENT_RETRIES`].
pub const GRPC_CALL_RETRIES: &str = "grpc.client.call.retries";
/// gRPC A96's transparent retries per call that made any (histogram, `{transparent_retry}`; labels
/// [`GRPC_METHOD`], [`GRPC_TARGET`]): retries of attempts that never reached the server
/// application (a refused stream, a failed connect).
pub const GRPC_CALL_TRANSPARENT_RETRIES: &str = "grpc.client.call.transparent_retries";
/// gRPC A96's hedges per call. Not recorded as a histogram per call: [`HEDGES`] counts the same
/// hedges; the name is here so a dashboard built on A96 can refer to it.
pub const GRPC_CALL_HEDGES: &str = "grpc.client.call.hedges";
/// Hedges sent: copies of an attempt still in flight ([`hedge`](crate::hedge); counter, `{hedge}`).
pub const HEDGES: &str = "http.client.retry.hedges";
/// gRPC A96's total wait per call that retried (histogram, seconds; labels [`GRPC_METHOD`],
/// [`GRPC_TARGET`]), recorded by `grpc::GrpcRetryLayer`.
pub const GRPC_CALL_RETRY_DELAY: &str = "grpc.client.call.retry_delay";
/// A96's method label: the full method name from the service definition (`package.Service/Method`,
/// the request path without its `/`), a bounded set.
pub const GRPC_METHOD: &str = "grpc.method";
/// A96's target label: the target given to `grpc::GrpcRetryLayer::target`,
/// else the request URI's authority, else `unknown` (tonic's generated clients send path-only URIs:
/// the channel adds its origin inside the layer).
pub const GRPC_TARGET: &str = "grpc.target";

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
    describe_histogram!(
        GRPC_CALL_TRANSPARENT_RETRIES,
        Unit::Count,
        "Transparent retries per call that made any"
    );
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

/// A hedge leaves.
#[cfg(feature = "metrics")]
pub(crate) fn hedge() {
    metrics::counter!(HEDGES).increment(1);
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
    // As A96: a call that did not retry records no retry count. A gRPC call's per-call
    // instruments are A96's, recorded with their labels by the gRPC layer, which sees the request.
    if attempts > 1 && !grpc {
        metrics::histogram!(CALL_RETRIES).record(f64::from(attempts - 1));
        metrics::histogram!(CALL_RETRY_DELAY).record(waited());
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
    reason.as_label()
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
pub(crate) fn hedge() {}
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
