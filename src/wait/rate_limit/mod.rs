//! Reading rate-limit headers: how much of its quota a client has left, and when the quota resets.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use http::HeaderMap;
//! use tower_http_retry::rate_limit::{exhausted_for, rate_limit};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("ratelimit", r#""default";r=0;t=30"#.parse().unwrap());
//! assert_eq!(exhausted_for(&headers, SystemTime::now()), Some(Duration::from_secs(30)));
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("x-ratelimit-remaining", "42".parse().unwrap());
//! headers.insert("x-ratelimit-reset", "12".parse().unwrap());
//! let status = rate_limit(&headers, SystemTime::now()).unwrap();
//! assert_eq!(status.remaining, 42);
//! assert_eq!(status.reset, Some(Duration::from_secs(12)));
//! assert_eq!(exhausted_for(&headers, SystemTime::now()), None, "quota left: no reason to wait");
//! ```
//!
//! Three generations of headers are read, the first that parses winning:
//!
//! 1. `RateLimit` and `RateLimit-Policy`, structured fields (RFC 8941) of the IETF draft
//!    (draft-ietf-httpapi-ratelimit-headers-08 and later): `RateLimit: "default";r=0;t=30` says the
//!    quota of policy `default` has 0 requests left and resets in 30 s;
//!    `RateLimit-Policy: "default";q=100;w=60` says that quota is 100 requests per 60 s. When several
//!    policies are listed the most constrained decides. A spent quota without `t` is taken to reset
//!    within its policy's window `w`, the longest a window-based quota can take. The dictionary form of
//!    draft 07 (`RateLimit: limit=100, remaining=0, reset=30`) is read too.
//! 2. `RateLimit-Remaining` and `RateLimit-Reset` (delta-seconds), of drafts 00 to 06.
//! 3. `X-RateLimit-Remaining` and `X-RateLimit-Reset`, the common vendor headers. Their reset is
//!    delta-seconds for some APIs and a Unix time for others (GitHub's, for one): a value below
//!    1,000,000,000 (2001-09-09 as a Unix time, 31 years as a delay) is delta-seconds, a larger one a
//!    Unix time in seconds, measured against the response's `Date` header when it has one (clock
//!    skew), as `Retry-After` dates are. Fractions of a second are accepted (`1.5`).
//!
//! A field that does not parse (a negative count, a float where an integer belongs, a broken string,
//! a number too large, bytes that are not text) is ignored, as if absent; the next generation is tried.
//! `Retry-After` takes precedence over all of them: the layer reads these headers only when a response
//! has no valid `Retry-After`.

mod delta;
mod number;
mod read;
mod status;
mod structured;
mod structured_field;
mod vendor;

#[cfg(test)]
mod tests;

pub use read::{exhausted_for, rate_limit};
pub(crate) use read::{rate_limit_with, server_delay};
pub use status::RateLimitStatus;
