//! [`RateLimitStatus`]: what a response says about the client's quota.

use std::time::Duration;

/// What a response says about the client's quota.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use tower_http_retry::rate_limit::rate_limit;
///
/// let mut headers = HeaderMap::new();
/// let draft_07 = "limit=100, remaining=5, reset=30";
/// headers.insert("ratelimit", draft_07.parse().unwrap());
/// let status = rate_limit(&headers, SystemTime::now()).unwrap();
/// assert_eq!(status.remaining, 5);
/// assert_eq!(status.reset, Some(Duration::from_secs(30)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitStatus {
    /// Requests left before the quota is spent.
    pub remaining: u64,
    /// When the quota resets, from the response's reception, if the response says.
    pub reset: Option<Duration>,
}

impl RateLimitStatus {
    /// Whether the quota is spent.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use http::HeaderMap;
    /// use tower_http_retry::rate_limit::rate_limit;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("ratelimit-remaining", "0".parse().unwrap());
    /// let spent = rate_limit(&headers, SystemTime::now()).unwrap();
    /// assert!(spent.is_exhausted());
    ///
    /// headers.insert("ratelimit-remaining", "1".parse().unwrap());
    /// let left = rate_limit(&headers, SystemTime::now()).unwrap();
    /// assert!(!left.is_exhausted());
    /// ```
    pub fn is_exhausted(&self) -> bool {
        self.remaining == 0
    }
}
