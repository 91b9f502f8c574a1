//! Generation 3: `X-RateLimit-Remaining` and `X-RateLimit-Reset`, the common vendor headers, whose
//! reset is delta-seconds or a Unix time.

use std::time::{Duration, SystemTime};

use http::header::DATE;
use http::{HeaderMap, HeaderName};

use super::number::{integer, seconds};
use super::status::RateLimitStatus;

pub(super) const X_RATELIMIT_REMAINING: HeaderName =
    HeaderName::from_static("x-ratelimit-remaining");
pub(super) const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// An `X-RateLimit-Reset` at or above this is a Unix time; below it, delta-seconds.
const UNIX_TIME_THRESHOLD: u64 = 1_000_000_000;

/// `now` is read only for a Unix-time reset on a response without a valid `Date`.
pub(super) fn vendor_headers(
    headers: &HeaderMap,
    now: impl FnOnce() -> SystemTime,
) -> Option<RateLimitStatus> {
    let remaining = headers.get(X_RATELIMIT_REMAINING).and_then(integer)?;
    let reset = headers
        .get(X_RATELIMIT_RESET)
        .and_then(seconds)
        .and_then(|value| {
            if value.as_secs() < UNIX_TIME_THRESHOLD {
                return Some(value);
            }
            let at = SystemTime::UNIX_EPOCH.checked_add(value)?;
            let reference = headers
                .get(DATE)
                .and_then(|date| httpdate::parse_http_date(date.to_str().ok()?.trim()).ok())
                .unwrap_or_else(now);
            Some(at.duration_since(reference).unwrap_or(Duration::ZERO))
        });
    Some(RateLimitStatus { remaining, reset })
}
