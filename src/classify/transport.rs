//! The transport-error taxonomy: what kind of failure an error is, found by walking its
//! [`source()`](std::error::Error::source) chain, never by its message.

use std::error::Error as StdError;
use std::fmt;
use std::io;

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
    /// The connection closed in the middle of the response head; or a response body the layer
    /// read ([`buffer_responses`](crate::RetryPolicy::buffer_responses)) failed for a cause it
    /// does not recognise.
    IncompleteMessage,
    /// A timeout below this layer fired (a read timeout, tower's `TimeoutLayer`).
    Timeout,
    /// This layer's per-attempt timeout fired, or the client's own timeout on the request did
    /// (reqwest's `timeout` or `read_timeout`, with the `reqwest` feature).
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
        if let Some(e) = error.downcast_ref::<crate::body::BodyReadFailed>() {
            // The head had arrived: whatever the cause, the request was sent.
            return Some(match e.source().map(Self::of) {
                Some(kind) if kind != ErrorKind::Other && !kind.is_never_sent() => kind,
                _ => ErrorKind::IncompleteMessage,
            });
        }
        if error.is::<tower::timeout::error::Elapsed>() {
            return Some(ErrorKind::Timeout);
        }
        #[cfg(feature = "reqwest")]
        if let Some(e) = error.downcast_ref::<::reqwest::Error>() {
            return Self::of_reqwest(e);
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

    #[cfg(feature = "reqwest")]
    fn of_reqwest(e: &::reqwest::Error) -> Option<Self> {
        if e.is_connect() {
            // A connect timeout is both: the request never left, so it is a connect failure.
            Some(ErrorKind::Connect)
        } else if e.is_timeout() {
            // The client's own timeout on this request (`timeout`, `read_timeout`): the attempt's.
            Some(ErrorKind::AttemptTimeout)
        } else if e.is_builder() || e.is_redirect() {
            // Another attempt would build the same bad request or follow the same loop.
            Some(ErrorKind::Other)
        } else {
            None // its source tells more
        }
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
///
/// let timed_out = AttemptTimedOut::default();
/// assert_eq!(ErrorKind::of(&timed_out), ErrorKind::AttemptTimeout);
///
/// let uri = Uri::from_static("http://api.example/");
/// let (headers, key) = (HeaderMap::new(), http::HeaderName::from_static("idempotency-key"));
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

    fn io(kind: io::ErrorKind) -> io::Error {
        io::Error::new(kind, "message text is never read")
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
}
