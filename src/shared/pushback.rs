//! Shared pushback: when a server says "come back later", every request to it waits, not only the
//! one that was told.
//!
//! ```
//! use tower_http_retry::pushback::Pushback;
//! use tower_http_retry::{RetryLayer, RetryPolicy};
//!
//! // Opt in; clones of the handle (and every layer given one) share the holds.
//! let pushback = Pushback::new();
//! let layer = RetryLayer::new(RetryPolicy::default().pushback(pushback.clone()));
//! # let _ = layer;
//! ```
//!
//! A response from an authority (scheme, host and port) holds every new attempt to that authority,
//! first attempts included, when it is
//!
//! - a 429 or 503 with a valid `Retry-After`, held for that delay, or
//! - any response whose [rate-limit headers](crate::rate_limit) say the quota is spent and when it
//!   resets, held until the reset.
//!
//! A hold lasts at most the policy's [`max_retry_after`](crate::RetryPolicy::max_retry_after). When it
//! ends, the requests it held do not all leave at once: each leaves at a random instant within one
//! more hold-length after the end (a hold of 2 s releases its requests over the following 2 s), so
//! they go out at about the rate they arrived. A request held past its call's deadline ends with the
//! deadline error.
//!
//! Without pushback (the default) nothing here runs: no clock read, no header read, no lock. With it,
//! every response's `Retry-After` and rate-limit headers are looked up, and a request while no hold is
//! active anywhere costs one clock read and one atomic load; the lock is taken only while some hold is
//! active, or to record one.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode, Uri};
use tokio::time::Instant;

use crate::wait::rate_limit::exhausted_for;
use crate::wait::retry_after::retry_after;

/// The most authorities held at once; past it, the hold ending soonest is forgotten.
const MAX_HOLDS: usize = 1024;

/// Holds on authorities that asked clients to stay away, shared by every clone of this handle.
///
/// Give it to a policy with [`RetryPolicy::pushback`](crate::RetryPolicy::pushback). See the
/// [module](self) for what sets a hold and how held requests are released.
///
/// ```
/// use std::time::Duration;
/// use http::Uri;
/// use tower_http_retry::pushback::Pushback;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let pushback = Pushback::new();
/// let api: Uri = "https://api.example/v1/items".parse().unwrap();
/// pushback.hold(&api, Duration::from_secs(5));
/// assert!(pushback.held_until(&"https://API.example:443/other".parse().unwrap()).is_some());
/// assert!(pushback.held_until(&"http://api.example/v1/items".parse().unwrap()).is_none());
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Pushback {
    shared: Arc<Shared>,
}

/// A hold on one authority: no attempt before `until`; held requests spread over `length` after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hold {
    pub(crate) until: Instant,
    pub(crate) length: Duration,
}

struct Shared {
    start: Instant,
    /// Nanoseconds after `start` past which no hold is active: requests after it skip the lock.
    horizon: AtomicU64,
    holds: Mutex<Vec<Entry>>,
}

struct Entry {
    authority: Authority,
    hold: Hold,
}

/// Scheme, host and port, lowercase, the port made explicit.
#[derive(Debug, PartialEq, Eq)]
struct Authority {
    scheme: Box<str>,
    host: Box<str>,
    port: u16,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            horizon: AtomicU64::new(0),
            holds: Mutex::new(Vec::new()),
        }
    }
}

impl Pushback {
    /// No authority held yet.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use http::{Request, Response, StatusCode};
    /// use tokio::time::Instant;
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::pushback::Pushback;
    /// use tower_http_retry::{Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // Asks the first caller to come back in 5 s.
    /// let throttled = Arc::new(AtomicBool::new(true));
    /// let server = service_fn(move |_: Request<String>| {
    ///     let response = match throttled.swap(false, Ordering::SeqCst) {
    ///         true => Response::builder().status(429).header("retry-after", "5"),
    ///         false => Response::builder(),
    ///     };
    ///     async move { Ok::<_, Infallible>(response.body(String::new()).unwrap()) }
    /// });
    /// let policy = RetryPolicy::default()
    ///     .max_attempts(1)
    ///     .pushback(Pushback::new());
    /// let client = Retry::new(server, policy);
    /// let items = "http://api.example/v1/items";
    /// let get = || Request::get(items).body(String::new()).unwrap();
    ///
    /// let first = client.clone().oneshot(get()).await.unwrap();
    /// assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    ///
    /// // Another call to the same server waits out the hold before its first attempt.
    /// let start = Instant::now();
    /// let second = client.clone().oneshot(get()).await.unwrap();
    /// assert_eq!(second.status(), StatusCode::OK);
    /// assert!(start.elapsed() >= Duration::from_secs(5));
    /// # }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Holds new attempts to `uri`'s authority for `delay` from now, as a response asking for it
    /// would. A URI without a host is ignored.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::Uri;
    /// use tokio::time::Instant;
    /// use tower_http_retry::pushback::Pushback;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let pushback = Pushback::new();
    /// let api: Uri = "https://api.example/v1/items".parse().unwrap();
    /// let until = Instant::now() + Duration::from_secs(30);
    /// pushback.hold(&api, Duration::from_secs(30));
    /// assert_eq!(pushback.held_until(&api), Some(until));
    ///
    /// // A shorter hold does not cut a longer one short.
    /// pushback.hold(&api, Duration::from_secs(10));
    /// assert_eq!(pushback.held_until(&api), Some(until));
    /// # }
    /// ```
    pub fn hold(&self, uri: &Uri, delay: Duration) {
        self.hold_at(uri, Instant::now(), delay);
    }

    /// When attempts to `uri`'s authority may start again, if it is held now.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::Uri;
    /// use tower_http_retry::pushback::Pushback;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let pushback = Pushback::new();
    /// let api: Uri = "https://api.example/v1/items".parse().unwrap();
    /// assert_eq!(pushback.held_until(&api), None);
    ///
    /// pushback.hold(&api, Duration::from_secs(5));
    /// assert!(pushback.held_until(&api).is_some());
    /// tokio::time::advance(Duration::from_secs(5)).await;
    /// assert_eq!(pushback.held_until(&api), None, "the hold has ended");
    /// # }
    /// ```
    pub fn held_until(&self, uri: &Uri) -> Option<Instant> {
        self.hold_for(uri, Instant::now()).map(|hold| hold.until)
    }

    /// The hold on `uri`'s authority at `now`, if there is one.
    pub(crate) fn hold_for(&self, uri: &Uri, now: Instant) -> Option<Hold> {
        let shared = &*self.shared;
        if shared.nanos(now) >= shared.horizon.load(Ordering::Acquire) {
            return None; // no hold is active anywhere
        }
        let (scheme, host, port) = parts(uri)?;
        let holds = shared.holds.lock().unwrap_or_else(PoisonError::into_inner);
        holds
            .iter()
            .find(|entry| entry.authority.is(scheme, host, port))
            .map(|entry| entry.hold)
            .filter(|hold| hold.until > now)
    }

    /// Records the hold a response from `uri`'s authority asks for, if any, at most `max` long.
    pub(crate) fn observe(
        &self,
        uri: &Uri,
        status: StatusCode,
        headers: &HeaderMap,
        now: Instant,
        max: Duration,
    ) {
        let wall = SystemTime::now();
        let asked = match status.as_u16() {
            429 | 503 => retry_after(headers, wall).or_else(|| exhausted_for(headers, wall)),
            _ => exhausted_for(headers, wall),
        };
        if let Some(delay) = asked {
            self.hold_at(uri, now, delay.min(max));
        }
    }

    fn hold_at(&self, uri: &Uri, now: Instant, delay: Duration) {
        let Some((scheme, host, port)) = parts(uri) else {
            return;
        };
        let Some(until) = now.checked_add(delay).filter(|_| !delay.is_zero()) else {
            return;
        };
        let shared = &*self.shared;
        let hold = Hold {
            until,
            length: delay,
        };
        let mut holds = shared.holds.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = holds
            .iter_mut()
            .find(|entry| entry.authority.is(scheme, host, port))
        {
            if until > entry.hold.until {
                entry.hold = hold;
            }
        } else {
            holds.retain(|entry| entry.hold.until > now);
            if holds.len() >= MAX_HOLDS {
                if let Some(soonest) = (0..holds.len()).min_by_key(|&i| holds[i].hold.until) {
                    holds.swap_remove(soonest);
                }
            }
            holds.push(Entry {
                authority: Authority {
                    scheme: scheme.to_ascii_lowercase().into(),
                    host: host.to_ascii_lowercase().into(),
                    port,
                },
                hold,
            });
        }
        shared
            .horizon
            .fetch_max(shared.nanos(until), Ordering::AcqRel);
    }
}

impl Shared {
    fn nanos(&self, at: Instant) -> u64 {
        let elapsed = at.saturating_duration_since(self.start);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }
}

impl Authority {
    fn is(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.port == port
            && self.scheme.eq_ignore_ascii_case(scheme)
            && self.host.eq_ignore_ascii_case(host)
    }
}

/// The authority of `uri`: scheme (http when absent), host, and port (the scheme's default when
/// absent). `None` without a host.
fn parts(uri: &Uri) -> Option<(&str, &str, u16)> {
    let host = uri.host()?;
    let scheme = uri.scheme_str().unwrap_or("http");
    let port = uri.port_u16().unwrap_or_else(|| {
        if scheme.eq_ignore_ascii_case("https") {
            443
        } else if scheme.eq_ignore_ascii_case("http") {
            80
        } else {
            0
        }
    });
    Some((scheme, host, port))
}

impl fmt::Debug for Pushback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let holds = self
            .shared
            .holds
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Pushback")
            .field("authorities", &holds.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[tokio::test(start_paused = true)]
    async fn holds_are_per_scheme_host_and_port() {
        let p = Pushback::new();
        p.hold(&uri("https://api.test/a"), secs(5));
        let start = Instant::now();
        for same in [
            "https://api.test/b?q=1",
            "https://API.TEST/",
            "https://api.test:443/",
        ] {
            assert_eq!(p.held_until(&uri(same)), Some(start + secs(5)), "{same}");
        }
        for other in [
            "http://api.test/",
            "https://api.test:8443/",
            "https://other.test/",
            "/relative",
        ] {
            assert_eq!(p.held_until(&uri(other)), None, "{other}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_ends_and_only_a_later_one_replaces_it() {
        let p = Pushback::new();
        let api = uri("http://api.test/");
        let start = Instant::now();
        p.hold(&api, secs(10));
        p.hold(&api, secs(3));
        assert_eq!(p.held_until(&api), Some(start + secs(10)));
        advance(secs(10)).await;
        assert_eq!(p.held_until(&api), None);
        p.hold(&api, Duration::ZERO);
        assert_eq!(p.held_until(&api), None, "a zero delay holds nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn responses_set_holds_from_retry_after_or_a_spent_quota() {
        let p = Pushback::new();
        let max = secs(60);
        let now = Instant::now();
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (name, value) in pairs {
                h.insert(*name, value.parse().unwrap());
            }
            h
        };
        let retry_after = headers(&[("retry-after", "7")]);
        let spent = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "4")]);
        let cases = [
            (429, &retry_after, Some(secs(7))),
            (503, &retry_after, Some(secs(7))),
            // Retry-After on other statuses (a 301, a 202 to poll) says nothing about load.
            (200, &retry_after, None),
            (500, &retry_after, None),
            (200, &spent, Some(secs(4))),
            (429, &spent, Some(secs(4))),
            (429, &headers(&[("retry-after", "3600")]), Some(max)),
        ];
        for (i, (status, headers, expected)) in cases.into_iter().enumerate() {
            let api = uri(&format!("http://host-{i}.test/"));
            p.observe(
                &api,
                StatusCode::from_u16(status).unwrap(),
                headers,
                now,
                max,
            );
            assert_eq!(
                p.hold_for(&api, now).map(|h| h.length),
                expected,
                "{status} {headers:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_number_of_authorities_is_bounded() {
        let p = Pushback::new();
        for i in 0..(MAX_HOLDS + 10) {
            p.hold(&uri(&format!("http://h{i}.test/")), secs(10 + i as u64));
        }
        let holds = p.shared.holds.lock().unwrap();
        assert_eq!(holds.len(), MAX_HOLDS);
        assert!(!holds.iter().any(|e| &*e.authority.host == "h0.test"));
    }
}
