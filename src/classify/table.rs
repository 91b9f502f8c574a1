//! The decision table: what an attempt's outcome calls for, by status, method and transport error.

use std::error::Error as StdError;

use std::time::Duration;

use bytes::Bytes;
use http::response::Parts;
use http::{Extensions, HeaderMap, HeaderName, Method, StatusCode, Uri};
use tokio::time::Instant;

use super::transport::ErrorKind;

/// What to do with an attempt's outcome.
///
/// ```
/// use http::{HeaderMap, Method, StatusCode, Uri};
/// use tower_http_retry::classify::{default_decision, Decision, Outcome, RequestInfo, RetryClass};
///
/// let uri = Uri::from_static("http://api.example/");
/// let (headers, key) = (HeaderMap::new(), http::HeaderName::from_static("idempotency-key"));
/// let decide = |method: &Method, status: StatusCode| {
///     let request = RequestInfo::new(method, &uri, &headers, 1, &key);
///     let outcome = Outcome::Response {
///         status,
///         headers: &headers,
///         extensions: &http::Extensions::new(),
///     };
///     default_decision(&request, &outcome)
/// };
/// let retry = Decision::Retry(RetryClass::Transient);
/// assert_eq!(decide(&Method::GET, StatusCode::BAD_GATEWAY), retry);
/// assert_eq!(
///     decide(&Method::POST, StatusCode::BAD_GATEWAY),
///     Decision::Unsafe
/// );
/// assert_eq!(decide(&Method::GET, StatusCode::NOT_FOUND), Decision::Done);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Decision {
    /// Worth another attempt, within the policy's limits.
    Retry(RetryClass),
    /// Would be worth another attempt, but the request may already have taken effect and carries no
    /// idempotency key: return the outcome.
    Unsafe,
    /// Final: a success, or a failure that another attempt would not change.
    Done,
}

/// Why an outcome is retryable; classes may be given different waits.
///
/// Each class has its own backoff and limits: see
/// [`RetryPolicy::backoff_for`](crate::RetryPolicy::backoff_for).
///
/// ```
/// use http::{HeaderMap, Method, StatusCode, Uri};
/// use tower_http_retry::classify::{default_decision, Decision, Outcome, RequestInfo, RetryClass};
///
/// let uri = Uri::from_static("http://api.example/");
/// let (headers, key) = (HeaderMap::new(), http::HeaderName::from_static("idempotency-key"));
/// let get = RequestInfo::new(&Method::GET, &uri, &headers, 1, &key);
/// let decide = |status| {
///     let outcome = Outcome::Response {
///         status,
///         headers: &headers,
///         extensions: &http::Extensions::new(),
///     };
///     default_decision(&get, &outcome)
/// };
/// assert_eq!(
///     decide(StatusCode::TOO_MANY_REQUESTS),
///     Decision::Retry(RetryClass::Throttling)
/// );
/// assert_eq!(
///     decide(StatusCode::SERVICE_UNAVAILABLE),
///     Decision::Retry(RetryClass::Transient)
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryClass {
    /// The server is busy or asked us to slow down (429, 409 while a keyed request is in flight).
    Throttling,
    /// A passing failure (5xx, 408, transport errors, timeouts).
    Transient,
}

/// What an attempt produced, as the classifier sees it.
///
/// A classifier can be tested with outcomes made by hand:
///
/// ```
/// use std::io;
/// use http::{HeaderMap, Method, StatusCode, Uri};
/// use tower_http_retry::classify::{Decision, Outcome, RequestInfo};
/// use tower_http_retry::RetryPolicy;
///
/// // This API marks the failures that no retry will fix.
/// fn classify(_: &RequestInfo<'_>, outcome: &Outcome<'_>) -> Option<Decision> {
///     match outcome {
///         Outcome::Response { headers, .. } if headers.contains_key("x-final") => {
///             Some(Decision::Done)
///         }
///         _ => None,
///     }
/// }
///
/// let uri = Uri::from_static("http://api.example/");
/// let (none, key) = (HeaderMap::new(), http::HeaderName::from_static("idempotency-key"));
/// let request = RequestInfo::new(&Method::GET, &uri, &none, 1, &key);
/// let mut marked = HeaderMap::new();
/// marked.insert("x-final", "1".parse().unwrap());
/// let unavailable = Outcome::Response {
///     status: StatusCode::SERVICE_UNAVAILABLE,
///     headers: &marked,
///     extensions: &http::Extensions::new(),
/// };
/// assert_eq!(classify(&request, &unavailable), Some(Decision::Done));
/// let reset = io::Error::from(io::ErrorKind::ConnectionReset);
/// let failed = Outcome::Error(&reset);
/// // Not this hook's concern: the default table decides.
/// assert_eq!(classify(&request, &failed), None);
///
/// let policy = RetryPolicy::default().classify_with(classify);
/// # let _ = policy;
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Outcome<'a> {
    /// A response head arrived.
    Response {
        /// Its status.
        status: StatusCode,
        /// Its headers.
        headers: &'a HeaderMap,
        /// Its extensions: where a layer can mark a response it made itself (a local timeout, say),
        /// so that a classifier can tell it from one the server sent.
        extensions: &'a Extensions,
    },
    /// The attempt failed without a response.
    Error(&'a (dyn StdError + Send + Sync + 'static)),
}

impl<'a> Outcome<'a> {
    /// The outcome of a response with this head.
    ///
    /// ```
    /// use http::{Response, StatusCode};
    /// use tower_http_retry::classify::Outcome;
    ///
    /// let (head, _) = Response::builder().status(503).body(()).unwrap().into_parts();
    /// let outcome = Outcome::from_parts(&head);
    /// assert_eq!(outcome.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    /// ```
    pub fn from_parts(head: &'a Parts) -> Self {
        Outcome::Response {
            status: head.status,
            headers: &head.headers,
            extensions: &head.extensions,
        }
    }

    /// The response's status; `None` for an error.
    ///
    /// ```
    /// use http::StatusCode;
    /// use tower_http_retry::classify::{Decision, Outcome};
    /// use tower_http_retry::RetryPolicy;
    ///
    /// // Retry 429 and nothing else, by the default table's rules for 429.
    /// let policy = RetryPolicy::default().classify_with(|_, outcome| match outcome.status() {
    ///     Some(StatusCode::TOO_MANY_REQUESTS) => None,
    ///     _ => Some(Decision::Done),
    /// });
    /// # let _ = policy;
    /// ```
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Outcome::Response { status, .. } => Some(*status),
            Outcome::Error(_) => None,
        }
    }

    /// The response body, when the policy [buffers responses](crate::RetryPolicy::buffer_responses)
    /// and the body was read whole (within the limit); `None` otherwise, and for an error.
    ///
    /// Some APIs answer 200 with the real error in the body. This classifier retries a JSON
    /// `{"error": "overloaded"}` and leaves everything else to the default table:
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::{Arc, Mutex};
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::classify::{Decision, RetryClass};
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let bodies = Arc::new(Mutex::new([r#"{"error": "overloaded"}"#, r#"{"id": 7}"#].into_iter()));
    /// let server = service_fn(move |_: Request<String>| {
    ///     let body = bodies.lock().unwrap().next().unwrap();
    ///     async move { Ok::<_, Infallible>(Response::new(String::from(body))) }
    /// });
    /// let policy = RetryPolicy::default()
    ///     .buffer_responses(64 * 1024)
    ///     .classify_with(|_, outcome| {
    ///         let body = outcome.body()?;
    ///         let overloaded = body.windows(10).any(|part| part == b"overloaded");
    ///         overloaded.then_some(Decision::Retry(RetryClass::Throttling))
    ///     });
    /// let client = Retry::new(server, policy);
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    /// assert_eq!(RetryHistory::resend_count(response.extensions()), 1);
    /// # }
    /// ```
    pub fn body(&self) -> Option<&'a Bytes> {
        match self {
            Outcome::Response { extensions, .. } => {
                extensions.get::<BufferedBytes>().map(|read| &read.0)
            }
            Outcome::Error(_) => None,
        }
    }
}

/// The bytes of a response body read whole, in the response's extensions while its outcome is
/// judged (and only then): what [`Outcome::body`] returns.
#[derive(Clone)]
pub(crate) struct BufferedBytes(pub(crate) Bytes);

/// The request an outcome belongs to.
///
/// ```
/// use std::io;
/// use http::{HeaderMap, Method, Uri};
/// use tower_http_retry::classify::{Decision, Outcome, RequestInfo};
/// use tower_http_retry::RetryPolicy;
///
/// // Reports are slow to build: two attempts at most.
/// fn classify(request: &RequestInfo<'_>, _: &Outcome<'_>) -> Option<Decision> {
///     let report = request.uri.path().starts_with("/reports/");
///     (report && request.attempt >= 2).then_some(Decision::Done)
/// }
/// let policy = RetryPolicy::default().classify_with(classify);
///
/// let uri = Uri::from_static("http://api.example/reports/7");
/// let (headers, key) = (HeaderMap::new(), http::HeaderName::from_static("idempotency-key"));
/// let reset = io::Error::from(io::ErrorKind::ConnectionReset);
/// let attempt = |n| {
///     let request = RequestInfo::new(&Method::GET, &uri, &headers, n, &key);
///     classify(&request, &Outcome::Error(&reset))
/// };
/// assert_eq!(attempt(1), None);
/// assert_eq!(attempt(2), Some(Decision::Done));
/// # let _ = policy;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RequestInfo<'a> {
    /// Its method.
    pub method: &'a Method,
    /// Its URI.
    pub uri: &'a Uri,
    /// Its headers as sent on the first attempt, the idempotency key the layer set included (a
    /// [before-retry hook](crate::RetryPolicy::before_retry)'s changes to a retry are not).
    pub headers: &'a HeaderMap,
    /// The attempt this outcome is from, counting from 1.
    pub attempt: u32,
    pub(crate) idempotency_header: &'a HeaderName,
    /// When the first attempt left, if the layer measured it (see [`RequestInfo::elapsed`]).
    pub(crate) first_sent: Option<Instant>,
}

impl<'a> RequestInfo<'a> {
    /// Describes a request, for calling [`default_decision`] or a classifier outside the layer (in
    /// tests of a custom hook, say). `idempotency_header` is the header that carries a key.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
    /// use tower_http_retry::classify::{default_decision, Decision, Outcome, RequestInfo};
    ///
    /// let (uri, headers) = (Uri::from_static("http://api.test/"), HeaderMap::new());
    /// let key = HeaderName::from_static("idempotency-key");
    /// let request = RequestInfo::new(&Method::POST, &uri, &headers, 1, &key);
    /// let extensions = http::Extensions::new();
    /// let outcome = Outcome::Response {
    ///     status: StatusCode::SERVICE_UNAVAILABLE,
    ///     headers: &headers,
    ///     extensions: &extensions,
    /// };
    /// assert_eq!(default_decision(&request, &outcome), Decision::Unsafe);
    /// ```
    pub fn new(
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a HeaderMap,
        attempt: u32,
        idempotency_header: &'a HeaderName,
    ) -> Self {
        Self {
            method,
            uri,
            headers,
            attempt,
            idempotency_header,
            first_sent: None,
        }
    }

    /// The same request, whose first attempt left at `instant`: what [`elapsed`](Self::elapsed) measures
    /// from. For classifiers tested outside the layer; the layer sets it itself.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::{HeaderMap, HeaderName, Method, Uri};
    /// use tokio::time::Instant;
    /// use tower_http_retry::classify::RequestInfo;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (uri, headers) = (Uri::from_static("http://api.test/"), HeaderMap::new());
    /// let key = HeaderName::from_static("idempotency-key");
    /// let request = RequestInfo::new(&Method::POST, &uri, &headers, 2, &key).first_sent_at(Instant::now());
    /// tokio::time::advance(Duration::from_secs(61)).await;
    /// assert_eq!(request.elapsed(), Duration::from_secs(61));
    /// # }
    /// ```
    pub fn first_sent_at(mut self, instant: Instant) -> Self {
        self.first_sent = Some(instant);
        self
    }

    /// The time since the first attempt left, read from tokio's clock when called: for guidance that
    /// makes a retry safe only within a window ("`ingest()` is safe to retry within a rolling 60-second
    /// window").
    ///
    /// The layer records when the call started (when its first attempt left, unless the throttle
    /// held it) only for policies with a classification hook (a
    /// [`classify_with`](crate::RetryPolicy::classify_with) hook, a shortcut or a per-call classifier),
    /// a [check](crate::check), or a deadline (then for free, from the deadline), so that a call nothing
    /// could ask costs no clock read; outside the layer and without
    /// [`first_sent_at`](Self::first_sent_at) it is zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::classify::{default_decision, Decision, RetryClass};
    /// use tower_http_retry::RetryPolicy;
    ///
    /// // A create the server deduplicates for 60 s: retried while the retry leaves inside that window
    /// // (the longest delay here is 10 s).
    /// let policy = RetryPolicy::default().classify_with(|request, outcome| {
    ///     let in_window = request.elapsed() + Duration::from_secs(10) <= Duration::from_secs(60);
    ///     (default_decision(request, outcome) == Decision::Unsafe && in_window)
    ///         .then_some(Decision::Retry(RetryClass::Transient))
    /// });
    /// # let _ = policy;
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.first_sent
            .map_or(Duration::ZERO, |sent| sent.elapsed())
    }

    /// Whether the request carries the idempotency key header the policy recognises, with a key in it:
    /// a blank or whitespace-only value is no key.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
    /// use tower_http_retry::classify::RequestInfo;
    ///
    /// let uri = Uri::from_static("http://pay.example/v1/charges");
    /// let key = HeaderName::from_static("idempotency-key");
    /// let mut headers = HeaderMap::new();
    /// headers.insert(&key, HeaderValue::from_static("order-42"));
    /// assert!(RequestInfo::new(&Method::POST, &uri, &headers, 1, &key).has_idempotency_key());
    ///
    /// // Only the header the policy recognises counts.
    /// let other = HeaderName::from_static("x-idempotency-key");
    /// assert!(!RequestInfo::new(&Method::POST, &uri, &headers, 1, &other).has_idempotency_key());
    /// ```
    pub fn has_idempotency_key(&self) -> bool {
        self.headers
            .get(self.idempotency_header)
            .is_some_and(is_key)
    }

    /// Whether repeating the request is safe by itself: an idempotent method, or an idempotency key.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, Method, Uri};
    /// use tower_http_retry::classify::RequestInfo;
    ///
    /// let uri = Uri::from_static("http://api.example/v1/items");
    /// let key = http::HeaderName::from_static("idempotency-key");
    /// let plain = HeaderMap::new();
    /// let mut keyed = HeaderMap::new();
    /// keyed.insert(&key, HeaderValue::from_static("order-42"));
    /// let idempotent = |method: &Method, headers: &HeaderMap| {
    ///     RequestInfo::new(method, &uri, headers, 1, &key).is_idempotent()
    /// };
    /// assert!(idempotent(&Method::PUT, &plain));
    /// assert!(!idempotent(&Method::POST, &plain));
    /// assert!(idempotent(&Method::POST, &keyed));
    /// ```
    pub fn is_idempotent(&self) -> bool {
        is_idempotent_method(self.method) || self.has_idempotency_key()
    }
}

/// GET, HEAD, OPTIONS, TRACE, PUT and DELETE (RFC 9110 §9.2.2).
///
/// ```
/// use http::Method;
/// use tower_http_retry::classify::is_idempotent_method;
///
/// assert!(is_idempotent_method(&Method::PUT));
/// assert!(is_idempotent_method(&Method::DELETE));
/// assert!(!is_idempotent_method(&Method::POST));
/// // Keys are injected only for methods that are not idempotent by themselves.
/// for method in [Method::POST, Method::PATCH] {
///     assert!(!is_idempotent_method(&method));
/// }
/// ```
pub fn is_idempotent_method(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The decision of the table in this module's documentation.
///
/// ```
/// use std::io;
/// use http::{HeaderMap, Method, Uri};
/// use tower_http_retry::classify::{default_decision, Decision, Outcome, RequestInfo, RetryClass};
///
/// let uri = Uri::from_static("http://api.example/");
/// let (headers, key) = (HeaderMap::new(), http::HeaderName::from_static("idempotency-key"));
/// let post = RequestInfo::new(&Method::POST, &uri, &headers, 1, &key);
///
/// // Never sent: safe to send again.
/// let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
/// let retry = Decision::Retry(RetryClass::Transient);
/// assert_eq!(default_decision(&post, &Outcome::Error(&refused)), retry);
///
/// // Maybe sent: the charge may have gone through.
/// let reset = io::Error::from(io::ErrorKind::ConnectionReset);
/// assert_eq!(
///     default_decision(&post, &Outcome::Error(&reset)),
///     Decision::Unsafe
/// );
/// ```
pub fn default_decision(request: &RequestInfo<'_>, outcome: &Outcome<'_>) -> Decision {
    let (class, needs_idempotence) = match outcome {
        Outcome::Response { status, .. } => match status.as_u16() {
            // A 408 may have been made by a layer after the server got the request: see the module docs.
            408 => (RetryClass::Transient, true),
            429 => (RetryClass::Throttling, false),
            500 | 502 | 503 | 504 => (RetryClass::Transient, true),
            409 if request.has_idempotency_key() => (RetryClass::Throttling, true),
            _ => return Decision::Done,
        },
        Outcome::Error(error) => {
            let kind = ErrorKind::of(*error);
            if kind == ErrorKind::Other {
                return Decision::Done;
            }
            (RetryClass::Transient, !kind.is_never_sent())
        }
    };
    // Asked last: a request that is not idempotent by its method is looked up for its key, and a
    // final outcome needs no such lookup.
    if needs_idempotence && !request.is_idempotent() {
        Decision::Unsafe
    } else {
        Decision::Retry(class)
    }
}

/// A classifier for [`RetryPolicy::classify_with`](crate::RetryPolicy::classify_with) that retries
/// every 5xx, for APIs whose guidance says "retry 5xx": 501, 505, 507 and the others too, not only
/// 500, 502, 503 and 504. Like those, a 5xx is a transient failure retried only when the request is
/// idempotent (the server may have acted on it). For every other outcome it returns `None`: the
/// default table decides.
///
/// ```
/// use tower_http_retry::classify::every_server_error;
/// use tower_http_retry::RetryPolicy;
///
/// let policy = RetryPolicy::default().classify_with(every_server_error);
/// # let _ = policy;
/// ```
pub fn every_server_error(request: &RequestInfo<'_>, outcome: &Outcome<'_>) -> Option<Decision> {
    if !outcome
        .status()
        .is_some_and(|status| status.is_server_error())
    {
        return None;
    }
    Some(if request.is_idempotent() {
        Decision::Retry(RetryClass::Transient)
    } else {
        Decision::Unsafe
    })
}

/// Whether a header value is a key: a blank or whitespace-only value is none (a server that ignores blank
/// keys would run a retried request twice).
pub(crate) fn is_key(value: &http::HeaderValue) -> bool {
    !value.as_bytes().iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    use super::super::transport::AttemptTimedOut;
    use http::header::HeaderValue;

    const KEY: HeaderName = HeaderName::from_static("idempotency-key");

    fn decide(method: Method, keyed: bool, outcome: Outcome<'_>) -> Decision {
        let mut headers = HeaderMap::new();
        if keyed {
            headers.insert(KEY, HeaderValue::from_static("k-1"));
        }
        let uri = Uri::from_static("http://example.test/");
        let request = RequestInfo {
            method: &method,
            uri: &uri,
            headers: &headers,
            attempt: 1,
            idempotency_header: &KEY,
            first_sent: None,
        };
        default_decision(&request, &outcome)
    }

    fn status(code: u16) -> Outcome<'static> {
        static EMPTY: std::sync::OnceLock<HeaderMap> = std::sync::OnceLock::new();
        static NO_EXTENSIONS: std::sync::OnceLock<Extensions> = std::sync::OnceLock::new();
        Outcome::Response {
            status: StatusCode::from_u16(code).unwrap(),
            headers: EMPTY.get_or_init(HeaderMap::new),
            extensions: NO_EXTENSIONS.get_or_init(Extensions::new),
        }
    }

    const RETRY: Decision = Decision::Retry(RetryClass::Transient);
    const THROTTLE: Decision = Decision::Retry(RetryClass::Throttling);

    /// The response future settles a 2xx without asking the table when no hook or gRPC policy is
    /// set: that shortcut is only right while the table retries no success.
    #[test]
    fn no_success_is_ever_retried_by_the_table() {
        for code in 200..300 {
            for method in [Method::GET, Method::PUT, Method::POST, Method::PATCH] {
                for keyed in [false, true] {
                    let decision = decide(method.clone(), keyed, status(code));
                    assert_eq!(decision, Decision::Done, "{code} {method} keyed={keyed}");
                }
            }
        }
    }

    #[test]
    fn statuses_for_idempotent_and_non_idempotent_requests() {
        use Decision::{Done, Unsafe};
        // (status, idempotent method, POST without key, POST with key)
        let table = [
            (408, RETRY, Unsafe, RETRY),
            (429, THROTTLE, THROTTLE, THROTTLE),
            (500, RETRY, Unsafe, RETRY),
            (502, RETRY, Unsafe, RETRY),
            (503, RETRY, Unsafe, RETRY),
            (504, RETRY, Unsafe, RETRY),
            (409, Done, Done, THROTTLE),
            (422, Done, Done, Done),
            (501, Done, Done, Done),
            (200, Done, Done, Done),
            (204, Done, Done, Done),
            (301, Done, Done, Done),
            (304, Done, Done, Done),
            (400, Done, Done, Done),
            (401, Done, Done, Done),
            (402, Done, Done, Done),
            (403, Done, Done, Done),
            (404, Done, Done, Done),
            (413, Done, Done, Done),
            (415, Done, Done, Done),
            (505, Done, Done, Done),
        ];
        for (code, idempotent, post, keyed_post) in table {
            for method in [
                Method::GET,
                Method::HEAD,
                Method::OPTIONS,
                Method::TRACE,
                Method::PUT,
                Method::DELETE,
            ] {
                let expected = if code == 409 { Done } else { idempotent };
                assert_eq!(
                    decide(method.clone(), false, status(code)),
                    expected,
                    "{method} {code}"
                );
            }
            for method in [Method::POST, Method::PATCH] {
                assert_eq!(
                    decide(method.clone(), false, status(code)),
                    post,
                    "{method} {code}"
                );
                assert_eq!(
                    decide(method.clone(), true, status(code)),
                    keyed_post,
                    "keyed {method} {code}"
                );
            }
        }
    }

    fn io(kind: io::ErrorKind) -> io::Error {
        io::Error::new(kind, "message text is never read")
    }

    #[test]
    fn every_server_error_retries_each_5xx_by_the_default_rules_and_leaves_the_rest() {
        let uri = Uri::from_static("http://example.test/");
        let key = KEY;
        let mut keyed = HeaderMap::new();
        keyed.insert(KEY, HeaderValue::from_static("k-1"));
        let unkeyed = HeaderMap::new();
        let decide = |method: &Method, headers: &HeaderMap, outcome: Outcome<'_>| {
            let request = RequestInfo::new(method, &uri, headers, 1, &key);
            every_server_error(&request, &outcome)
        };
        for code in 500..600 {
            assert_eq!(
                decide(&Method::GET, &unkeyed, status(code)),
                Some(RETRY),
                "GET {code}"
            );
            assert_eq!(
                decide(&Method::POST, &keyed, status(code)),
                Some(RETRY),
                "keyed POST {code}"
            );
            assert_eq!(
                decide(&Method::POST, &unkeyed, status(code)),
                Some(Decision::Unsafe),
                "POST {code}"
            );
        }
        for code in [200, 301, 400, 408, 429, 499] {
            assert_eq!(decide(&Method::GET, &unkeyed, status(code)), None, "{code}");
        }
        let error = io(io::ErrorKind::ConnectionReset);
        assert_eq!(decide(&Method::GET, &unkeyed, Outcome::Error(&error)), None);
        assert_eq!(Outcome::Error(&error).status(), None);
        assert_eq!(status(418).status(), Some(StatusCode::IM_A_TEAPOT));
    }

    #[test]
    fn errors_for_idempotent_and_non_idempotent_requests() {
        use io::ErrorKind as K;
        let cases = [
            (io(K::ConnectionRefused), RETRY, RETRY),
            (io(K::ConnectionReset), RETRY, Decision::Unsafe),
            (io(K::BrokenPipe), RETRY, Decision::Unsafe),
            (io(K::UnexpectedEof), RETRY, Decision::Unsafe),
            (io(K::TimedOut), RETRY, Decision::Unsafe),
            (io(K::PermissionDenied), Decision::Done, Decision::Done),
        ];
        for (error, get, post) in cases {
            assert_eq!(
                decide(Method::GET, false, Outcome::Error(&error)),
                get,
                "{:?}",
                error.kind()
            );
            assert_eq!(
                decide(Method::POST, false, Outcome::Error(&error)),
                post,
                "{:?}",
                error.kind()
            );
            assert_eq!(
                decide(Method::POST, true, Outcome::Error(&error)),
                get,
                "keyed {:?}",
                error.kind()
            );
        }
        let timed_out = AttemptTimedOut;
        assert_eq!(
            decide(Method::GET, false, Outcome::Error(&timed_out)),
            RETRY
        );
        assert_eq!(
            decide(Method::PATCH, false, Outcome::Error(&timed_out)),
            Decision::Unsafe
        );
        #[cfg(feature = "http2")]
        {
            let refused = h2::Error::from(h2::Reason::REFUSED_STREAM);
            assert_eq!(decide(Method::POST, false, Outcome::Error(&refused)), RETRY);
        }
    }
}
