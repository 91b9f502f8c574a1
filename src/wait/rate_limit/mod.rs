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

use std::time::{Duration, SystemTime};

use http::header::DATE;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::report::history::WaitReason;
use crate::wait::retry_after::retry_after;

const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// An `X-RateLimit-Reset` at or above this is a Unix time; below it, delta-seconds.
pub(crate) const UNIX_TIME_THRESHOLD: u64 = 1_000_000_000;

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
    rate_limit(headers, now)
        .filter(RateLimitStatus::is_exhausted)
        .and_then(|status| status.reset)
}

/// The delay a response asks for: its `Retry-After`, or else the reset of a quota it says is spent.
pub(crate) fn server_delay(headers: &HeaderMap, now: SystemTime) -> Option<(Duration, WaitReason)> {
    if let Some(delay) = retry_after(headers, now) {
        return Some((delay, WaitReason::RetryAfter));
    }
    exhausted_for(headers, now).map(|delay| (delay, WaitReason::RateLimitReset))
}

// ---- Generation 1: the structured fields of the IETF draft ----

fn structured(headers: &HeaderMap) -> Option<RateLimitStatus> {
    let members = sf::parse_field(headers.get_all(RATELIMIT))?;
    if members.is_empty() {
        return None;
    }
    if members.iter().all(|m| m.key.is_some()) {
        return draft_07_dictionary(&members);
    }
    let mut policies: Option<Vec<sf::Member<'_>>> = None;
    let mut most_constrained: Option<RateLimitStatus> = None;
    for member in &members {
        let Some(remaining) = member.param("r").and_then(sf::Item::non_negative) else {
            continue; // an item without a valid remaining count says nothing
        };
        let reset = match member.param("t").map(sf::Item::non_negative) {
            Some(None) => continue, // a reset that is not a count of seconds: the item is malformed
            Some(Some(t)) => Some(Duration::from_secs(t)),
            None => None,
        };
        let reset = reset.or_else(|| {
            // A spent quota without a reset: its policy's window bounds the wait.
            let name = member.item.name()?;
            let policies = policies.get_or_insert_with(|| {
                sf::parse_field(headers.get_all(RATELIMIT_POLICY)).unwrap_or_default()
            });
            policies
                .iter()
                .find(|p| p.item.name() == Some(name))
                .and_then(|p| p.param("w"))
                .and_then(sf::Item::non_negative)
                .map(Duration::from_secs)
        });
        let status = RateLimitStatus { remaining, reset };
        most_constrained = Some(match most_constrained {
            None => status,
            Some(best) => tighter(best, status),
        });
    }
    most_constrained
}

/// The status that constrains more: fewer requests left, or, both spent, the later reset.
fn tighter(a: RateLimitStatus, b: RateLimitStatus) -> RateLimitStatus {
    match a.remaining.cmp(&b.remaining) {
        std::cmp::Ordering::Less => a,
        std::cmp::Ordering::Greater => b,
        std::cmp::Ordering::Equal => RateLimitStatus {
            remaining: a.remaining,
            reset: a.reset.max(b.reset),
        },
    }
}

/// `RateLimit: limit=100, remaining=0, reset=30` (draft 07).
fn draft_07_dictionary(members: &[sf::Member<'_>]) -> Option<RateLimitStatus> {
    let value = |key: &str| {
        members
            .iter()
            .rev() // a repeated dictionary key: the last one counts (RFC 8941)
            .find(|m| m.key == Some(key))
            .map(|m| m.item.non_negative())
    };
    let remaining = value("remaining")??;
    let reset = match value("reset") {
        Some(reset) => Some(Duration::from_secs(reset?)),
        None => None,
    };
    Some(RateLimitStatus { remaining, reset })
}

// ---- Generation 2: RateLimit-Remaining and RateLimit-Reset ----

fn delta_headers(headers: &HeaderMap) -> Option<RateLimitStatus> {
    let remaining = headers.get(RATELIMIT_REMAINING).and_then(integer)?;
    let reset = headers
        .get(RATELIMIT_RESET)
        .and_then(integer)
        .map(Duration::from_secs);
    Some(RateLimitStatus { remaining, reset })
}

// ---- Generation 3: X-RateLimit-Remaining and X-RateLimit-Reset ----

fn vendor_headers(headers: &HeaderMap, now: SystemTime) -> Option<RateLimitStatus> {
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
                .unwrap_or(now);
            Some(at.duration_since(reference).unwrap_or(Duration::ZERO))
        });
    Some(RateLimitStatus { remaining, reset })
}

/// `1*DIGIT`, surrounding whitespace allowed.
fn integer(value: &HeaderValue) -> Option<u64> {
    let text = value.to_str().ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `1*DIGIT [ "." 1*DIGIT ]` seconds, kept to the nanosecond.
fn seconds(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || text.ends_with('.') {
        return None;
    }
    let secs: u64 = whole.parse().ok()?;
    let nanos = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |n, digit| n * 10 + u32::from(digit - b'0'));
    Some(Duration::new(secs, nanos))
}

/// Just enough of RFC 8941 structured fields for the rate-limit headers: lists and dictionaries of
/// items with parameters. Anything outside the grammar fails the whole field, as RFC 8941 requires.
mod sf {
    use http::header::GetAll;
    use http::HeaderValue;

    /// A bare item; only integers and names are looked at.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub(super) enum Item<'a> {
        Integer(i64),
        /// A string's raw content (escapes left in) or a token.
        Name(&'a str),
        Other,
    }

    impl<'a> Item<'a> {
        pub(super) fn non_negative(&self) -> Option<u64> {
            match *self {
                Item::Integer(n) => u64::try_from(n).ok(),
                _ => None,
            }
        }

        pub(super) fn name(&self) -> Option<&'a str> {
            match *self {
                Item::Name(name) => Some(name),
                _ => None,
            }
        }
    }

    /// A list member (`key` is `None`) or a dictionary member.
    #[derive(Clone, Debug, PartialEq)]
    pub(super) struct Member<'a> {
        pub(super) key: Option<&'a str>,
        pub(super) item: Item<'a>,
        pub(super) params: Vec<(&'a str, Item<'a>)>,
    }

    impl<'a> Member<'a> {
        /// A parameter's value; a repeated key: the last one counts.
        pub(super) fn param(&self, key: &str) -> Option<&Item<'a>> {
            self.params
                .iter()
                .rev()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
        }
    }

    /// Every line of a field, as one list; `None` if any line does not parse.
    pub(super) fn parse_field<'a>(lines: GetAll<'a, HeaderValue>) -> Option<Vec<Member<'a>>> {
        let mut members = Vec::new();
        for line in lines {
            let text = std::str::from_utf8(line.as_bytes()).ok()?;
            Parser { s: text, i: 0 }.members(&mut members)?;
        }
        Some(members)
    }

    struct Parser<'a> {
        s: &'a str,
        i: usize,
    }

    impl<'a> Parser<'a> {
        fn peek(&self) -> Option<u8> {
            self.s.as_bytes().get(self.i).copied()
        }

        fn skip(&mut self, f: impl Fn(u8) -> bool) {
            while self.peek().is_some_and(&f) {
                self.i += 1;
            }
        }

        fn members(&mut self, out: &mut Vec<Member<'a>>) -> Option<()> {
            self.skip(|b| b == b' ');
            if self.peek().is_none() {
                return Some(()); // an empty line adds nothing
            }
            loop {
                out.push(self.member()?);
                self.skip(|b| b == b' ' || b == b'\t');
                match self.peek() {
                    None => return Some(()),
                    Some(b',') => {
                        self.i += 1;
                        self.skip(|b| b == b' ' || b == b'\t');
                        self.peek()?; // a trailing comma is an error
                    }
                    Some(_) => return None,
                }
            }
        }

        fn member(&mut self) -> Option<Member<'a>> {
            // A dictionary member starts with a key followed by '=' or ';' or ends; a key is also a
            // valid token, so `limit=10` and `"default";r=0` are told apart by what follows.
            let start = self.i;
            if self
                .peek()
                .is_some_and(|b| b.is_ascii_lowercase() || b == b'*')
            {
                let key = self.key()?;
                if self.peek() == Some(b'=') {
                    self.i += 1;
                    let item = self.bare_item()?;
                    let params = self.params()?;
                    return Some(Member {
                        key: Some(key),
                        item,
                        params,
                    });
                }
                self.i = start;
            }
            let item = if self.peek() == Some(b'(') {
                self.inner_list()?;
                Item::Other
            } else {
                self.bare_item()?
            };
            let params = self.params()?;
            Some(Member {
                key: None,
                item,
                params,
            })
        }

        fn inner_list(&mut self) -> Option<()> {
            self.i += 1; // '('
            loop {
                self.skip(|b| b == b' ');
                if self.peek() == Some(b')') {
                    self.i += 1;
                    return Some(());
                }
                self.bare_item()?;
                self.params()?;
                if !matches!(self.peek(), Some(b' ' | b')')) {
                    return None;
                }
            }
        }

        fn params(&mut self) -> Option<Vec<(&'a str, Item<'a>)>> {
            let mut params = Vec::new();
            while self.peek() == Some(b';') {
                self.i += 1;
                self.skip(|b| b == b' ');
                let key = self.key()?;
                let value = if self.peek() == Some(b'=') {
                    self.i += 1;
                    self.bare_item()?
                } else {
                    Item::Other // boolean true
                };
                params.push((key, value));
            }
            Some(params)
        }

        fn key(&mut self) -> Option<&'a str> {
            let start = self.i;
            if !self
                .peek()
                .is_some_and(|b| b.is_ascii_lowercase() || b == b'*')
            {
                return None;
            }
            self.skip(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'_' | b'-' | b'.' | b'*')
            });
            Some(&self.s[start..self.i])
        }

        fn bare_item(&mut self) -> Option<Item<'a>> {
            match self.peek()? {
                b'-' | b'0'..=b'9' => self.number(),
                b'"' => self.string(),
                b'*' | b'A'..=b'Z' | b'a'..=b'z' => {
                    let start = self.i;
                    self.i += 1;
                    self.skip(is_token_char);
                    Some(Item::Name(&self.s[start..self.i]))
                }
                b':' => {
                    self.i += 1;
                    self.skip(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
                    (self.peek() == Some(b':')).then(|| self.i += 1)?;
                    Some(Item::Other)
                }
                b'?' => {
                    self.i += 1;
                    matches!(self.peek(), Some(b'0' | b'1')).then(|| self.i += 1)?;
                    Some(Item::Other)
                }
                _ => None,
            }
        }

        /// `["-"] 1*15DIGIT` or `["-"] 1*12DIGIT "." 1*3DIGIT`.
        fn number(&mut self) -> Option<Item<'a>> {
            let start = self.i;
            if self.peek() == Some(b'-') {
                self.i += 1;
            }
            let digits_start = self.i;
            self.skip(|b| b.is_ascii_digit());
            let whole = self.i - digits_start;
            if whole == 0 {
                return None;
            }
            if self.peek() == Some(b'.') {
                self.i += 1;
                let fraction_start = self.i;
                self.skip(|b| b.is_ascii_digit());
                let fraction = self.i - fraction_start;
                return (whole <= 12 && (1..=3).contains(&fraction)).then_some(Item::Other);
            }
            if whole > 15 {
                return None;
            }
            self.s[start..self.i].parse().ok().map(Item::Integer)
        }

        fn string(&mut self) -> Option<Item<'a>> {
            self.i += 1; // the opening quote
            let start = self.i;
            loop {
                match self.peek()? {
                    b'"' => {
                        let content = &self.s[start..self.i];
                        self.i += 1;
                        return Some(Item::Name(content));
                    }
                    b'\\' => {
                        self.i += 1;
                        matches!(self.peek(), Some(b'"' | b'\\')).then(|| self.i += 1)?;
                    }
                    0x20..=0x7e => self.i += 1,
                    _ => return None,
                }
            }
        }
    }

    /// `tchar / ":" / "/"` (RFC 9110 §5.6.2, RFC 8941 §3.3.4).
    fn is_token_char(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: &str = "Wed, 06 Nov 2024 08:49:37 GMT";

    fn now() -> SystemTime {
        httpdate::parse_http_date(NOW).unwrap()
    }

    fn unix(at: SystemTime) -> u64 {
        at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
    }

    fn headers(fields: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    fn status(remaining: u64, reset: Option<u64>) -> Option<RateLimitStatus> {
        Some(RateLimitStatus {
            remaining,
            reset: reset.map(Duration::from_secs),
        })
    }

    #[test]
    fn the_table() {
        let in_90_s = (unix(now()) + 90).to_string();
        let in_90_s_by_server = (unix(now()) - 3600 + 90).to_string();
        type Fields<'a> = Vec<(&'static str, &'a [u8])>;
        let cases: Vec<(Fields<'_>, Option<RateLimitStatus>)> = vec![
            // The structured fields of the current draft.
            (
                vec![("ratelimit", br#""default";r=0;t=30"#)],
                status(0, Some(30)),
            ),
            (
                vec![("ratelimit", br#""default";r=50;t=30"#)],
                status(50, Some(30)),
            ),
            (vec![("ratelimit", br#"default;r=5"#)], status(5, None)),
            (
                vec![("ratelimit", br#""a";r=9;t=1, "b";r=0;t=60, "c";r=0;t=5"#)],
                status(0, Some(60)),
            ),
            (
                vec![
                    ("ratelimit", br#""a";r=3;t=1"#),
                    ("ratelimit", br#""b";r=2;t=7"#),
                ],
                status(2, Some(7)),
            ),
            (
                vec![("ratelimit", br#""a";r=0;t=1;pk=:cHJvamVjdDEyMw==:"#)],
                status(0, Some(1)),
            ),
            (
                vec![("ratelimit", br#""we\"ird";r=0;t=4"#)],
                status(0, Some(4)),
            ),
            // A spent quota without `t` resets within its policy's window.
            (
                vec![
                    ("ratelimit", br#""day";r=0"#),
                    (
                        "ratelimit-policy",
                        br#""burst";q=10;w=1, "day";q=1000;w=86400"#,
                    ),
                ],
                status(0, Some(86400)),
            ),
            (vec![("ratelimit", br#""day";r=0"#)], status(0, None)),
            (
                vec![
                    ("ratelimit", br#""day";r=0"#),
                    ("ratelimit-policy", b"day;q=x"),
                ],
                status(0, None),
            ),
            // Draft 07's dictionary.
            (
                vec![("ratelimit", b"limit=100, remaining=0, reset=30")],
                status(0, Some(30)),
            ),
            (
                vec![("ratelimit", b"limit=100, remaining=7")],
                status(7, None),
            ),
            // Drafts 00 to 06.
            (
                vec![("ratelimit-remaining", b"0"), ("ratelimit-reset", b"12")],
                status(0, Some(12)),
            ),
            (vec![("ratelimit-remaining", b"3")], status(3, None)),
            // Vendor headers: delta-seconds, Unix time, Unix time against the server's Date, fractions.
            (
                vec![
                    ("x-ratelimit-remaining", b"0"),
                    ("x-ratelimit-reset", b"15"),
                ],
                status(0, Some(15)),
            ),
            (
                vec![
                    ("x-ratelimit-remaining", b"0"),
                    ("x-ratelimit-reset", in_90_s.as_bytes()),
                ],
                status(0, Some(90)),
            ),
            (
                vec![
                    ("x-ratelimit-remaining", b"0"),
                    ("x-ratelimit-reset", in_90_s_by_server.as_bytes()),
                    ("date", b"Wed, 06 Nov 2024 07:49:37 GMT"),
                ],
                status(0, Some(90)),
            ),
            (
                vec![
                    ("x-ratelimit-remaining", b"0"),
                    ("x-ratelimit-reset", b"1000000000"),
                    ("date", b"Sun, 06 Nov 2005 08:49:37 GMT"),
                ],
                status(0, Some(0)), // a Unix time in the past: reset already
            ),
            (
                vec![
                    ("x-ratelimit-remaining", b" 0 "),
                    ("x-ratelimit-reset", b"1.25"),
                ],
                Some(RateLimitStatus {
                    remaining: 0,
                    reset: Some(Duration::from_millis(1250)),
                }),
            ),
            (
                vec![
                    ("x-ratelimit-remaining", b"0"),
                    ("x-ratelimit-reset", b"soon"),
                ],
                status(0, None),
            ),
            // The newest generation that parses wins; a malformed one is skipped.
            (
                vec![
                    ("ratelimit", br#""default";r=1;t=2"#),
                    ("x-ratelimit-remaining", b"0"),
                    ("x-ratelimit-reset", b"99"),
                ],
                status(1, Some(2)),
            ),
            (
                vec![
                    ("ratelimit", br#""default";r=0;t=2.5"#),
                    ("x-ratelimit-remaining", b"0"),
                    ("x-ratelimit-reset", b"99"),
                ],
                status(0, Some(99)),
            ),
            // Ignored.
            (vec![("ratelimit", br#""default";r=-1;t=30"#)], None),
            (vec![("ratelimit", br#""default";r=1.5"#)], None),
            (vec![("ratelimit", br#""default";t=30"#)], None),
            (vec![("ratelimit", br#""unterminated;r=0;t=1"#)], None),
            (vec![("ratelimit", br#""a";r=0;t=1,"#)], None),
            (vec![("ratelimit", br#""a";r=0;t=1 junk"#)], None),
            (vec![("ratelimit", br#""a";r=0;t=1234567890123456"#)], None),
            (vec![("ratelimit", b"")], None),
            (
                vec![("ratelimit", br#""a";r=0"#), ("ratelimit", b"%%%")],
                None,
            ),
            (vec![("ratelimit", b"limit=100, remaining=-3")], None),
            (
                vec![("ratelimit-remaining", b"-1"), ("ratelimit-reset", b"5")],
                None,
            ),
            (vec![("x-ratelimit-remaining", b"1e3")], None),
            (
                vec![("x-ratelimit-remaining", b"99999999999999999999999")],
                None,
            ),
            (vec![("x-ratelimit-reset", b"10")], None),
            (vec![("x-ratelimit-remaining", b"\xff")], None),
            (vec![], None),
        ];
        for (fields, expected) in cases {
            assert_eq!(
                rate_limit(&headers(&fields), now()),
                expected,
                "{:?}",
                fields
                    .iter()
                    .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
                    .collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn only_a_spent_quota_with_a_reset_asks_for_a_wait() {
        let spent = headers(&[("ratelimit", br#""default";r=0;t=30"#)]);
        assert_eq!(exhausted_for(&spent, now()), Some(Duration::from_secs(30)));
        let left = headers(&[("ratelimit", br#""default";r=1;t=30"#)]);
        assert_eq!(exhausted_for(&left, now()), None);
        let unknown = headers(&[("x-ratelimit-remaining", b"0")]);
        assert_eq!(exhausted_for(&unknown, now()), None);
    }

    #[test]
    fn retry_after_takes_precedence() {
        let both = headers(&[
            ("retry-after", b"3"),
            ("ratelimit", br#""default";r=0;t=30"#),
        ]);
        assert_eq!(
            server_delay(&both, now()),
            Some((Duration::from_secs(3), WaitReason::RetryAfter))
        );
        let broken_retry_after = headers(&[
            ("retry-after", b"later"),
            ("ratelimit", br#""default";r=0;t=30"#),
        ]);
        assert_eq!(
            server_delay(&broken_retry_after, now()),
            Some((Duration::from_secs(30), WaitReason::RateLimitReset))
        );
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(
            value in proptest::collection::vec(any::<u8>(), 0..48),
            structured in r#"[a-z"*;=,:?() 0-9.\-]{0,40}"#,
        ) {
            for bytes in [&value[..], structured.as_bytes()] {
                if let Ok(value) = HeaderValue::from_bytes(bytes) {
                    let mut headers = HeaderMap::new();
                    for name in [
                        RATELIMIT, RATELIMIT_POLICY, RATELIMIT_REMAINING, RATELIMIT_RESET,
                        X_RATELIMIT_REMAINING, X_RATELIMIT_RESET, DATE,
                    ] {
                        headers.insert(name, value.clone());
                    }
                    let _ = rate_limit(&headers, SystemTime::UNIX_EPOCH);
                    let _ = server_delay(&headers, SystemTime::now());
                    // A structured field alone, and with a valid fallback that must still be reachable.
                    let mut alone = HeaderMap::new();
                    alone.insert(RATELIMIT, value.clone());
                    alone.insert(X_RATELIMIT_REMAINING, HeaderValue::from_static("4"));
                    let status = rate_limit(&alone, SystemTime::now());
                    prop_assert!(status.is_some());
                }
            }
        }
    }
}
