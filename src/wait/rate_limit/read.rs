//! The entry points: each generation of headers is tried in turn, the first that parses winning.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

use super::delta::delta_headers;
use super::status::RateLimitStatus;
use super::structured::structured;
use super::vendor::vendor_headers;
use crate::wait::retry_after::retry_after_with;
use crate::wait::WaitReason;

/// The quota the response's rate-limit headers report, if any of them parses.
///
/// `now` is the reference for a Unix-time reset when the response has no valid `Date` header.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use tower_http_retry::rate_limit::rate_limit;
///
/// // A reset given as a Unix time (1,700,000,060), one minute after the response's Date.
/// let mut headers = HeaderMap::new();
/// headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
/// headers.insert("x-ratelimit-reset", "1700000060".parse().unwrap());
/// headers.insert("date", "Tue, 14 Nov 2023 22:13:20 GMT".parse().unwrap());
/// assert!(1_700_000_060 >= 1_000_000_000);
///
/// let status = rate_limit(&headers, SystemTime::now()).unwrap();
/// assert_eq!(status.remaining, 0);
/// assert_eq!(status.reset, Some(Duration::from_secs(60)));
/// assert_eq!(rate_limit(&HeaderMap::new(), SystemTime::now()), None);
/// ```
pub fn rate_limit(headers: &HeaderMap, now: SystemTime) -> Option<RateLimitStatus> {
    rate_limit_with(headers, || now)
}

/// [`rate_limit`], reading `now` only for a Unix-time reset without a `Date` to measure it from.
pub(crate) fn rate_limit_with(
    headers: &HeaderMap,
    now: impl FnOnce() -> SystemTime,
) -> Option<RateLimitStatus> {
    structured(headers)
        .or_else(|| delta_headers(headers))
        .or_else(|| vendor_headers(headers, now))
}

/// How long until the quota resets, when the response says it is spent and when it resets.
///
/// This is what the layer waits for before retrying a response without `Retry-After`.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use tower_http_retry::rate_limit::exhausted_for;
///
/// let now = SystemTime::now();
///
/// // Spent, with no reset: the policy's 60 s window bounds the wait.
/// let mut headers = HeaderMap::new();
/// let policy = r#""default";q=100;w=60"#;
/// headers.insert("ratelimit", r#""default";r=0"#.parse().unwrap());
/// headers.insert("ratelimit-policy", policy.parse().unwrap());
/// assert_eq!(exhausted_for(&headers, now), Some(Duration::from_secs(60)));
///
/// // Spent, but no word on when it resets: nothing to wait for.
/// let mut headers = HeaderMap::new();
/// headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
/// assert_eq!(exhausted_for(&headers, now), None);
/// ```
pub fn exhausted_for(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    exhausted_for_with(headers, || now)
}

fn exhausted_for_with(headers: &HeaderMap, now: impl FnOnce() -> SystemTime) -> Option<Duration> {
    rate_limit_with(headers, now)
        .filter(RateLimitStatus::is_exhausted)
        .and_then(|status| status.reset)
}

/// The delay a response asks for: its `Retry-After`, or else the reset of a quota it says is spent.
/// The wall clock (`now`) is read only when a header gives a date with no `Date` header to measure it
/// from: a response that asks for nothing, or for a number of seconds, costs no clock read.
pub(crate) fn server_delay(
    headers: &HeaderMap,
    now: impl Fn() -> SystemTime,
) -> Option<(Duration, WaitReason)> {
    // Many error responses carry no header at all: then not one of the names is looked up.
    if headers.is_empty() {
        return None;
    }
    if let Some(delay) = retry_after_with(headers, &now) {
        return Some((delay, WaitReason::RetryAfter));
    }
    exhausted_for_with(headers, now).map(|delay| (delay, WaitReason::RateLimitReset))
}
