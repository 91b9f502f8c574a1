//! What is worth retrying: the decision for one attempt's outcome.
//!
//! The default follows this table (idempotent means GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or any
//! method whose request carries an idempotency key):
//!
//! | outcome | idempotent | POST, PATCH without a key |
//! |---|---|---|
//! | 429 | retry (throttling) | retry: the server did not process it |
//! | 408 | retry | return the response: a layer may have made it (see below) |
//! | 500, 502, 503, 504 | retry | return the response |
//! | 409 with an idempotency key (still in flight) | retry (throttling) | n/a |
//! | any other status: 2xx, 3xx, other 4xx (including 422), 501 | return it | return it |
//! | never sent: connect error, DNS, refused, HTTP/2 REFUSED_STREAM | retry | retry |
//! | maybe sent: reset, closed, incomplete message, timeout | retry | return the error |
//!
//! A `408 Request Timeout` sent by a server means it never got the whole request (RFC 9110 15.5.9).
//! But a 408 can also be made on the client's side: tower-http's `TimeoutLayer` (its deprecated `new`,
//! and `with_status_code(StatusCode::REQUEST_TIMEOUT, ..)`) answers a timed-out attempt with a 408 it
//! made itself, after the request reached the server, which may have acted on it. A 408 is therefore
//! retried only for idempotent requests. Inside the retry, prefer a timeout that fails the attempt with
//! an error (tower's `TimeoutLayer`, or [`RetryPolicy::attempt_timeout`](crate::RetryPolicy::attempt_timeout)):
//! a timed-out POST is then reported, not repeated; or put tower-http's `TimeoutLayer` outside the
//! retry, where it bounds the whole call. A layer that marks the responses it makes with a response
//! extension can be told apart by a classifier hook, which sees the response's extensions.
//!
//! Decisions are made on status codes, headers and error types, never on message text. Transport errors
//! are recognised by walking [`source()`](std::error::Error::source) through hyper-util's client error to
//! `hyper::Error`, `h2::Error` and `std::io::Error`.
//!
//! A hook set with [`RetryPolicy::classify_with`](crate::RetryPolicy::classify_with) sees every outcome
//! first; returning `None` falls back to this table, which is also callable as [`default_decision`].

use std::error::Error as StdError;
use std::fmt;
use std::io;

use http::response::Parts;
use http::{Extensions, HeaderMap, HeaderName, Method, StatusCode, Uri};

/// What to do with an attempt's outcome.
///
/// ```
/// use http::{HeaderMap, Method, StatusCode, Uri};
/// use tower_http_retry::classify::{default_decision, Decision, Outcome, RequestInfo, RetryClass};
/// use tower_http_retry::DEFAULT_IDEMPOTENCY_HEADER;
///
/// let uri = Uri::from_static("http://api.example/");
/// let (headers, key) = (HeaderMap::new(), DEFAULT_IDEMPOTENCY_HEADER);
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
/// use tower_http_retry::DEFAULT_IDEMPOTENCY_HEADER;
///
/// let uri = Uri::from_static("http://api.example/");
/// let (headers, key) = (HeaderMap::new(), DEFAULT_IDEMPOTENCY_HEADER);
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
/// use tower_http_retry::{RetryPolicy, DEFAULT_IDEMPOTENCY_HEADER};
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
/// let (none, key) = (HeaderMap::new(), DEFAULT_IDEMPOTENCY_HEADER);
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
}

/// The request an outcome belongs to.
///
/// ```
/// use std::io;
/// use http::{HeaderMap, Method, Uri};
/// use tower_http_retry::classify::{Decision, Outcome, RequestInfo};
/// use tower_http_retry::{RetryPolicy, DEFAULT_IDEMPOTENCY_HEADER};
///
/// // Reports are slow to build: two attempts at most.
/// fn classify(request: &RequestInfo<'_>, _: &Outcome<'_>) -> Option<Decision> {
///     let report = request.uri.path().starts_with("/reports/");
///     (report && request.attempt >= 2).then_some(Decision::Done)
/// }
/// let policy = RetryPolicy::default().classify_with(classify);
///
/// let uri = Uri::from_static("http://api.example/reports/7");
/// let (headers, key) = (HeaderMap::new(), DEFAULT_IDEMPOTENCY_HEADER);
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
        }
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
            .is_some_and(crate::idempotency::is_key)
    }

    /// Whether repeating the request is safe by itself: an idempotent method, or an idempotency key.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, Method, Uri};
    /// use tower_http_retry::classify::RequestInfo;
    /// use tower_http_retry::DEFAULT_IDEMPOTENCY_HEADER;
    ///
    /// let uri = Uri::from_static("http://api.example/v1/items");
    /// let key = DEFAULT_IDEMPOTENCY_HEADER;
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
/// use tower_http_retry::idempotency::DEFAULT_IDEMPOTENCY_KEY_METHODS;
///
/// assert!(is_idempotent_method(&Method::PUT));
/// assert!(is_idempotent_method(&Method::DELETE));
/// assert!(!is_idempotent_method(&Method::POST));
/// // Keys are injected only for methods that are not idempotent by themselves.
/// for method in DEFAULT_IDEMPOTENCY_KEY_METHODS {
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
/// use tower_http_retry::DEFAULT_IDEMPOTENCY_HEADER;
///
/// let uri = Uri::from_static("http://api.example/");
/// let (headers, key) = (HeaderMap::new(), DEFAULT_IDEMPOTENCY_HEADER);
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
    let idempotent = request.is_idempotent();
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
    if needs_idempotence && !idempotent {
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

/// What kind of transport failure an error is, as far as retrying is concerned.
///
/// ```
/// use std::io;
/// use tower_http_retry::classify::ErrorKind;
///
/// let kind = |kind: io::ErrorKind| ErrorKind::of(&io::Error::from(kind));
/// assert_eq!(kind(io::ErrorKind::ConnectionRefused), ErrorKind::Connect);
/// assert_eq!(kind(io::ErrorKind::ConnectionReset), ErrorKind::Reset);
/// assert_eq!(kind(io::ErrorKind::UnexpectedEof), ErrorKind::Closed);
/// assert_eq!(kind(io::ErrorKind::TimedOut), ErrorKind::Timeout);
/// assert_eq!(kind(io::ErrorKind::PermissionDenied), ErrorKind::Other);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No connection was made (connect error, DNS failure, connection refused): the request never left.
    Connect,
    /// An HTTP/2 server refused the stream (REFUSED_STREAM, or a graceful GOAWAY that excludes it):
    /// it was never processed.
    Refused,
    /// The connection was reset, aborted or its pipe broke: the request may have been sent.
    Reset,
    /// The connection closed, or the request was canceled, before a response arrived.
    Closed,
    /// The connection closed in the middle of the response head.
    IncompleteMessage,
    /// A timeout below this layer fired (a read timeout, tower's `TimeoutLayer`).
    Timeout,
    /// This layer's per-attempt timeout fired.
    AttemptTimeout,
    /// Not a transport failure this crate recognises; not retried by default.
    Other,
}

impl ErrorKind {
    /// Classifies an error by walking its [`source()`](StdError::source) chain, outermost first.
    ///
    /// ```
    /// use std::error::Error;
    /// use std::{fmt, io};
    /// use tower_http_retry::classify::ErrorKind;
    ///
    /// // A client's own error type, with the transport failure as its source.
    /// #[derive(Debug)]
    /// struct RequestFailed(io::Error);
    /// impl fmt::Display for RequestFailed {
    ///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    ///         f.write_str("request failed")
    ///     }
    /// }
    /// impl Error for RequestFailed {
    ///     fn source(&self) -> Option<&(dyn Error + 'static)> {
    ///         Some(&self.0)
    ///     }
    /// }
    ///
    /// let refused = RequestFailed(io::ErrorKind::ConnectionRefused.into());
    /// assert_eq!(ErrorKind::of(&refused), ErrorKind::Connect);
    /// // The type decides, never the message.
    /// let message_only = io::Error::other("connection refused");
    /// assert_eq!(ErrorKind::of(&message_only), ErrorKind::Other);
    /// ```
    pub fn of(error: &(dyn StdError + 'static)) -> Self {
        let mut next = Some(error);
        while let Some(error) = next {
            if let Some(kind) = Self::of_one(error) {
                return kind;
            }
            next = error.source();
        }
        ErrorKind::Other
    }

    fn of_one(error: &(dyn StdError + 'static)) -> Option<Self> {
        if error.is::<AttemptTimedOut>() {
            return Some(ErrorKind::AttemptTimeout);
        }
        if error.is::<tower::timeout::error::Elapsed>() {
            return Some(ErrorKind::Timeout);
        }
        #[cfg(feature = "hyper-util")]
        if let Some(e) = error.downcast_ref::<hyper_util::client::legacy::Error>() {
            return e.is_connect().then_some(ErrorKind::Connect);
        }
        #[cfg(feature = "http2")]
        if let Some(e) = error.downcast_ref::<h2::Error>() {
            return Self::of_h2(e);
        }
        if let Some(e) = error.downcast_ref::<hyper::Error>() {
            return Self::of_hyper(e);
        }
        if let Some(e) = error.downcast_ref::<io::Error>() {
            return Self::of_io(e.kind());
        }
        None
    }

    fn of_hyper(e: &hyper::Error) -> Option<Self> {
        if e.is_timeout() {
            Some(ErrorKind::Timeout)
        } else if e.is_incomplete_message() {
            Some(ErrorKind::IncompleteMessage)
        } else if e.is_closed() || e.is_canceled() {
            Some(ErrorKind::Closed)
        } else {
            None // an I/O or protocol failure: its source tells more
        }
    }

    #[cfg(feature = "http2")]
    fn of_h2(e: &h2::Error) -> Option<Self> {
        let refused = e.reason() == Some(h2::Reason::REFUSED_STREAM)
            || (e.is_go_away() && e.is_remote() && e.reason() == Some(h2::Reason::NO_ERROR));
        if refused {
            Some(ErrorKind::Refused)
        } else if let Some(io) = e.get_io() {
            Self::of_io(io.kind())
        } else if e.reason().is_some() {
            Some(ErrorKind::Reset) // RST_STREAM or GOAWAY with an error: the stream may have been processed
        } else {
            None
        }
    }

    fn of_io(kind: io::ErrorKind) -> Option<Self> {
        use io::ErrorKind as K;
        match kind {
            K::ConnectionRefused | K::AddrNotAvailable => Some(ErrorKind::Connect),
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Some(ErrorKind::Reset),
            K::NotConnected | K::UnexpectedEof => Some(ErrorKind::Closed),
            K::TimedOut => Some(ErrorKind::Timeout),
            _ => None,
        }
    }

    /// Whether the request certainly never reached the server, so retrying cannot duplicate it.
    ///
    /// ```
    /// use std::io;
    /// use tower_http_retry::classify::ErrorKind;
    ///
    /// let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    /// assert!(ErrorKind::of(&refused).is_never_sent());
    /// assert!(ErrorKind::Refused.is_never_sent());
    /// assert!(!ErrorKind::Reset.is_never_sent());
    /// assert!(!ErrorKind::AttemptTimeout.is_never_sent());
    /// ```
    pub fn is_never_sent(self) -> bool {
        matches!(self, ErrorKind::Connect | ErrorKind::Refused)
    }

    /// A short lowercase name, for logs and metrics.
    ///
    /// ```
    /// use std::io;
    /// use tower_http_retry::classify::ErrorKind;
    ///
    /// let kind = ErrorKind::of(&io::Error::from(io::ErrorKind::UnexpectedEof));
    /// assert_eq!(kind.as_str(), "closed");
    /// assert_eq!(kind.to_string(), "closed");
    /// assert_eq!(ErrorKind::IncompleteMessage.as_str(), "incomplete_message");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Refused => "refused",
            ErrorKind::Reset => "reset",
            ErrorKind::Closed => "closed",
            ErrorKind::IncompleteMessage => "incomplete_message",
            ErrorKind::Timeout => "timeout",
            ErrorKind::AttemptTimeout => "attempt_timeout",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error an attempt ends with when this layer's per-attempt timeout fires.
///
/// It is [`ErrorKind::AttemptTimeout`]: the request may have reached the server, so only an
/// idempotent one is retried.
///
/// ```
/// use http::{HeaderMap, Method, Uri};
/// use tower_http_retry::classify::{
///     default_decision, AttemptTimedOut, Decision, ErrorKind, Outcome, RequestInfo,
/// };
/// use tower_http_retry::DEFAULT_IDEMPOTENCY_HEADER;
///
/// let timed_out = AttemptTimedOut::default();
/// assert_eq!(ErrorKind::of(&timed_out), ErrorKind::AttemptTimeout);
///
/// let uri = Uri::from_static("http://api.example/");
/// let (headers, key) = (HeaderMap::new(), DEFAULT_IDEMPOTENCY_HEADER);
/// let decide = |method: &Method| {
///     let request = RequestInfo::new(method, &uri, &headers, 1, &key);
///     default_decision(&request, &Outcome::Error(&timed_out))
/// };
/// assert!(matches!(decide(&Method::GET), Decision::Retry(_)));
/// assert_eq!(decide(&Method::POST), Decision::Unsafe);
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct AttemptTimedOut;

impl fmt::Display for AttemptTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no response head within the per-attempt timeout")
    }
}

impl StdError for AttemptTimedOut {}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn io_error_kinds() {
        use io::ErrorKind as K;
        let table = [
            (K::ConnectionRefused, ErrorKind::Connect),
            (K::ConnectionReset, ErrorKind::Reset),
            (K::ConnectionAborted, ErrorKind::Reset),
            (K::BrokenPipe, ErrorKind::Reset),
            (K::UnexpectedEof, ErrorKind::Closed),
            (K::TimedOut, ErrorKind::Timeout),
            (K::PermissionDenied, ErrorKind::Other),
        ];
        for (io_kind, expected) in table {
            assert_eq!(ErrorKind::of(&io(io_kind)), expected, "{io_kind:?}");
        }
    }

    #[derive(Debug)]
    struct Wrapper(Box<dyn StdError + Send + Sync>);
    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("connection refused, says the text, but the type says otherwise")
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn kinds_are_found_through_the_source_chain_not_the_message() {
        let wrapped = Wrapper(Box::new(io(io::ErrorKind::ConnectionReset)));
        assert_eq!(ErrorKind::of(&wrapped), ErrorKind::Reset);
        let deep = Wrapper(Box::new(Wrapper(Box::new(AttemptTimedOut))));
        assert_eq!(ErrorKind::of(&deep), ErrorKind::AttemptTimeout);
        let plain = io::Error::other("connection refused");
        assert_eq!(ErrorKind::of(&plain), ErrorKind::Other);
    }

    #[cfg(feature = "http2")]
    #[test]
    fn h2_refused_stream_and_graceful_goaway_are_never_sent() {
        let refused = h2::Error::from(h2::Reason::REFUSED_STREAM);
        assert_eq!(ErrorKind::of(&refused), ErrorKind::Refused);
        let other = h2::Error::from(h2::Reason::INTERNAL_ERROR);
        assert_eq!(ErrorKind::of(&other), ErrorKind::Reset);
    }

    #[test]
    fn tower_timeout_counts_as_timeout() {
        let elapsed = tower::timeout::error::Elapsed::new();
        assert_eq!(ErrorKind::of(&elapsed), ErrorKind::Timeout);
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
