//! Generation 2: `RateLimit-Remaining` and `RateLimit-Reset` (delta-seconds), of drafts 00 to 06.

use std::time::Duration;

use http::{HeaderMap, HeaderName};

use super::number::integer;
use super::status::RateLimitStatus;

pub(super) const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub(super) const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

pub(super) fn delta_headers(headers: &HeaderMap) -> Option<RateLimitStatus> {
    let remaining = headers.get(RATELIMIT_REMAINING).and_then(integer)?;
    let reset = headers
        .get(RATELIMIT_RESET)
        .and_then(integer)
        .map(Duration::from_secs);
    Some(RateLimitStatus { remaining, reset })
}
