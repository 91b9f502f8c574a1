//! Reading `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use http::HeaderMap;
//! use tower_http_retry::retry_after::retry_after;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("retry-after", "120".parse().unwrap());
//! assert_eq!(retry_after(&headers, SystemTime::now()), Some(Duration::from_secs(120)));
//!
//! headers.insert("retry-after", "soon".parse().unwrap());
//! assert_eq!(retry_after(&headers, SystemTime::now()), None);
//! ```
//!
//! Anything that is not a valid value (negative, fractional, garbage, a number of seconds that does not
//! fit in 64 bits, an unparsable date) is ignored: the ordinary backoff applies instead.
//!
//! # A floor, or the wait itself
//!
//! By default what the server asked for (its `Retry-After`, or the reset of a rate limit it reported
//! as spent) is a floor under the backoff: the layer waits the longer of the two, as RFC 9110 and most
//! vendor guidance ask. Some SDKs instead wait exactly what the server said and fall back to the
//! backoff only when it said nothing; [`RetryPolicy::retry_after_mode`](crate::RetryPolicy::retry_after_mode) with [`RetryAfterMode::Exact`]
//! does that. Either way a request for longer than
//! [`max_retry_after`](crate::RetryPolicy::max_retry_after), or past the deadline, is not waited for.

use std::time::{Duration, SystemTime};

use http::header::{DATE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue};

use crate::wait::{Wait, WaitReason};

/// How the delay a response asks for combines with the backoff.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceExt};
/// use tower_http_retry::backoff::{Backoff, Jitter};
/// use tower_http_retry::history::{Wait, WaitReason};
/// use tower_http_retry::retry_after::RetryAfterMode;
/// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
///
/// /// The first wait of a call whose 503 asks for 1 s, with a backoff of 5 s.
/// async fn first_wait(mode: RetryAfterMode) -> Wait {
///     let server = service_fn(|_: Request<String>| async {
///         let response = Response::builder().status(503).header("retry-after", "1");
///         Ok::<_, Infallible>(response.body(String::new()).unwrap())
///     });
///     let policy = RetryPolicy::default()
///         .max_attempts(2)
///         .backoff(Backoff::constant(Duration::from_secs(5)).jitter(Jitter::None))
///         .retry_after_mode(mode);
///     let client = Retry::new(server, policy);
///     let response = client.oneshot(Request::new(String::new())).await.unwrap();
///     let history = response.extensions().get::<RetryHistory>().unwrap();
///     history.attempts()[0].wait.unwrap()
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let backoff = Wait {
///     duration: Duration::from_secs(5),
///     reason: WaitReason::Backoff,
/// };
/// let asked = Wait {
///     duration: Duration::from_secs(1),
///     reason: WaitReason::RetryAfter,
/// };
/// assert_eq!(first_wait(RetryAfterMode::Floor).await, backoff);
/// assert_eq!(first_wait(RetryAfterMode::Exact).await, asked);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryAfterMode {
    /// Wait at least what the server asked for: the longer of it and the backoff (the default).
    #[default]
    Floor,
    /// Wait exactly what the server asked for, shorter than the backoff or not; the backoff applies
    /// only to responses that ask for nothing.
    Exact,
}

impl RetryAfterMode {
    /// The wait before a retry whose backoff delay is `backoff`, when the response `asked` for a delay.
    pub(crate) fn wait(self, asked: Option<(Duration, WaitReason)>, backoff: Duration) -> Wait {
        match asked {
            // gRPC's pushback is the wait itself (gRFC A6), whatever the mode.
            Some((duration, reason))
                if self == Self::Exact
                    || reason == WaitReason::GrpcPushback
                    || duration > backoff =>
            {
                Wait { duration, reason }
            }
            _ => Wait {
                duration: backoff,
                reason: WaitReason::Backoff,
            },
        }
    }
}

/// The delay a response asks for in its `Retry-After` header, if it holds a valid one.
///
/// An HTTP-date is measured from the response's own `Date` header when that parses, so a client whose
/// clock is skewed against the server's still waits what the server meant; otherwise from `now`.
/// A date in the past gives [`Duration::ZERO`].
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use tower_http_retry::retry_after::retry_after;
///
/// let now = SystemTime::now();
/// let mut headers = HeaderMap::new();
/// headers.insert(
///     "retry-after",
///     "Wed, 21 Oct 2015 07:28:30 GMT".parse().unwrap(),
/// );
/// headers.insert("date", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
/// assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
///
/// // Without a Date, measured from `now`: long past.
/// headers.remove("date");
/// assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
/// ```
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    retry_after_with(headers, || now)
}

/// [`retry_after`], reading `now` only for an HTTP-date without a `Date` to measure it from.
pub(crate) fn retry_after_with(
    headers: &HeaderMap,
    now: impl FnOnce() -> SystemTime,
) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?;
    if let Some(seconds) = delay_seconds(value) {
        return Some(seconds);
    }
    let at = http_date(value)?;
    let reference = headers.get(DATE).and_then(http_date).unwrap_or_else(now);
    Some(at.duration_since(reference).unwrap_or(Duration::ZERO))
}

/// `delay-seconds = 1*DIGIT`, surrounding whitespace allowed.
fn delay_seconds(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>().ok().map(Duration::from_secs)
}

/// IMF-fixdate, RFC 850 or asctime, as `httpdate` reads them.
fn http_date(value: &HeaderValue) -> Option<SystemTime> {
    httpdate::parse_http_date(value.to_str().ok()?.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        httpdate::parse_http_date(text).unwrap()
    }

    const NOW: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

    fn parse(retry_after_value: &[u8], date: Option<&str>) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_bytes(retry_after_value).unwrap(),
        );
        if let Some(date) = date {
            headers.insert(DATE, date.parse().unwrap());
        }
        retry_after(&headers, at(NOW))
    }

    #[test]
    fn the_table() {
        let secs = |s| Some(Duration::from_secs(s));
        let cases: &[(&[u8], Option<&str>, Option<Duration>)] = &[
            (b"0", None, secs(0)),
            (b"120", None, secs(120)),
            (b" 7 ", None, secs(7)),
            // The three HTTP-date formats, 90 s after NOW.
            (b"Sun, 06 Nov 1994 08:51:07 GMT", None, secs(90)),
            (b"Sunday, 06-Nov-94 08:51:07 GMT", None, secs(90)),
            (b"Sun Nov  6 08:51:07 1994", None, secs(90)),
            // A date in the past means "now".
            (b"Sun, 06 Nov 1994 08:00:00 GMT", None, secs(0)),
            // Read against the response's Date: the server's clock is 1 h behind ours, the wait is 30 s.
            (
                b"Sun, 06 Nov 1994 07:50:07 GMT",
                Some("Sun, 06 Nov 1994 07:49:37 GMT"),
                secs(30),
            ),
            // A Date header that does not parse falls back to our clock.
            (
                b"Sun, 06 Nov 1994 08:51:07 GMT",
                Some("yesterday"),
                secs(90),
            ),
            // Huge but representable: reported as is, the caller's cap decides.
            (b"9999999999", None, secs(9_999_999_999)),
            (
                b"Fri, 31 Dec 9999 23:59:59 GMT",
                None,
                Some(
                    at("Fri, 31 Dec 9999 23:59:59 GMT")
                        .duration_since(at(NOW))
                        .unwrap(),
                ),
            ),
            // Ignored.
            (b"-1", None, None),
            (b"+5", None, None),
            (b"1.5", None, None),
            (b"", None, None),
            (b"tomorrow", None, None),
            (b"99999999999999999999999", None, None),
            (b"Sun, 32 Nov 1994 08:51:07 GMT", None, None),
            (b"\xff\xfe", None, None),
        ];
        for (value, date, expected) in cases {
            assert_eq!(
                parse(value, *date),
                *expected,
                "Retry-After {:?} with Date {date:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn a_floor_keeps_the_longer_wait_and_exact_keeps_the_asked_one() {
        let secs = Duration::from_secs;
        let backoff = secs(4);
        let asked = |n| Some((secs(n), WaitReason::RetryAfter));
        let waits = |mode: RetryAfterMode, asked| {
            let wait = mode.wait(asked, backoff);
            (wait.duration, wait.reason)
        };
        use RetryAfterMode::{Exact, Floor};
        assert_eq!(waits(Floor, asked(1)), (secs(4), WaitReason::Backoff));
        assert_eq!(waits(Floor, asked(9)), (secs(9), WaitReason::RetryAfter));
        assert_eq!(waits(Exact, asked(1)), (secs(1), WaitReason::RetryAfter));
        assert_eq!(waits(Exact, asked(0)), (secs(0), WaitReason::RetryAfter));
        assert_eq!(waits(Exact, asked(9)), (secs(9), WaitReason::RetryAfter));
        let reset = Some((secs(2), WaitReason::RateLimitReset));
        assert_eq!(waits(Exact, reset), (secs(2), WaitReason::RateLimitReset));
        for mode in [Floor, Exact] {
            assert_eq!(waits(mode, None), (secs(4), WaitReason::Backoff));
        }
        assert_eq!(RetryAfterMode::default(), Floor);
    }

    #[test]
    fn absent_header_is_none() {
        assert_eq!(retry_after(&HeaderMap::new(), SystemTime::now()), None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(value in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                let mut headers = HeaderMap::new();
                headers.insert(RETRY_AFTER, value.clone());
                headers.insert(DATE, value);
                let _ = retry_after(&headers, SystemTime::UNIX_EPOCH);
                let _ = retry_after(&headers, SystemTime::now());
            }
        }
    }
}
