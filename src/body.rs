//! Request bodies that can be sent again: the [`ReplayableBody`] trait.
//!
//! A retry needs a second copy of the request body. Bodies that share their bytes ([`Full<Bytes>`],
//! [`Empty`], [`Bytes`]) hand out a copy by reference counting: no byte is copied. `String` is cloned,
//! which copies it; prefer `Full<Bytes>` for large payloads. Bodies that can be read only once (axum's
//! `Body`, hyper's `Incoming`, streams) become replayable in a [`ReplayBody`](crate::ReplayBody): see
//! [`replay`](crate::replay).
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower_http_retry::body::ReplayableBody;
//!
//! let body = Full::new(Bytes::from_static(b"{\"amount\": 100}"));
//! let again = body.replay().expect("Full<Bytes> always replays");
//! # let _ = again;
//! ```

use std::fmt;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Empty, Full};

/// A request body that can produce another copy of itself for the next attempt.
///
/// A body type that can rebuild itself from what it holds implements it by starting the copy over
/// (a real one also implements [`http_body::Body`]):
///
/// ```
/// use std::sync::Arc;
/// use tower_http_retry::body::{NotReplayable, ReplayableBody};
///
/// /// A payload sent from a shared buffer.
/// struct Payload {
///     bytes: Arc<[u8]>,
///     sent: usize,
/// }
///
/// impl ReplayableBody for Payload {
///     fn replay(&self) -> Result<Self, NotReplayable> {
///         Ok(Payload {
///             bytes: self.bytes.clone(),
///             sent: 0,
///         })
///     }
/// }
///
/// let half_sent = Payload {
///     bytes: Arc::from(&b"{\"amount\": 100}"[..]),
///     sent: 7,
/// };
/// let copy = half_sent.replay().unwrap();
/// assert_eq!(copy.sent, 0, "from its first byte");
/// assert!(Arc::ptr_eq(&copy.bytes, &half_sent.bytes), "no byte copied");
/// ```
pub trait ReplayableBody: Sized {
    /// A body equal to the original, ready to be sent from its first byte, or why there can't be one.
    ///
    /// Called once before the first attempt (its copy is kept for later attempts) and once per retry.
    fn replay(&self) -> Result<Self, NotReplayable>;

    /// Like [`replay`](Self::replay), but `Pending` (waking the task later) while the copy of an
    /// earlier attempt still holds the body and is about to hand it back. A transport can keep an
    /// attempt's body for a moment after the attempt ended (hyper's HTTP/2 body pipe, after a
    /// `REFUSED_STREAM` or a response sent before the body was read); the retry waits for it, within
    /// its backoff, the call's deadline and a grace of 100 ms, instead of giving up at once.
    ///
    /// The default never waits: it returns what `replay` does.
    ///
    /// ```
    /// use std::task::{Context, Poll, Waker};
    /// use bytes::Bytes;
    /// use tower_http_retry::body::ReplayableBody;
    ///
    /// let body = Bytes::from_static(b"{}");
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(matches!(body.poll_replay(&mut cx), Poll::Ready(Ok(copy)) if copy == body));
    /// ```
    fn poll_replay(&self, cx: &mut Context<'_>) -> Poll<Result<Self, NotReplayable>> {
        let _ = cx;
        Poll::Ready(self.replay())
    }
}

/// Why a request body could not be sent again; the request is then not retried.
///
/// The caller finds it in the history's stop reason:
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body_util::Full;
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
/// use tower_http_retry::body::NotReplayable;
/// use tower_http_retry::history::StopReason;
/// use tower_http_retry::{ReplayBody, ReplayBodyLayer, RetryHistory, RetryLayer, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let unavailable = service_fn(|_: Request<ReplayBody<Full<Bytes>>>| async {
///     Ok::<_, Infallible>(Response::builder().status(503).body(String::new()).unwrap())
/// });
/// let client = ServiceBuilder::new()
///     .layer(ReplayBodyLayer::new().limit(8))
///     .layer(RetryLayer::new(RetryPolicy::default()))
///     .service(unavailable);
///
/// let upload = Full::new(Bytes::from_static(b"sixteen bytes..."));
/// let request = Request::put("http://api.example/v1/files/7")
///     .body(upload)
///     .unwrap();
/// let response = client.oneshot(request).await.unwrap();
/// let history = response.extensions().get::<RetryHistory>().unwrap();
/// assert_eq!(history.attempt_count(), 1);
/// let too_large = StopReason::BodyNotReplayable(NotReplayable::TooLarge { limit: 8 });
/// assert_eq!(history.stop_reason(), too_large);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotReplayable {
    /// The body's own implementation declines to be replayed (a one-shot body).
    Declined,
    /// The body is longer than its replay limit: the recording was dropped (or never started, when
    /// the size hint was already over it) and the attempt that was sending it carried on.
    TooLarge {
        /// The replay limit, in bytes.
        limit: u64,
    },
    /// An attempt ended (its response arrived, or it timed out) while its request body was still being
    /// sent: that attempt's transport still holds the body, so there is no whole body to send again.
    StillSending,
    /// The body itself failed while being sent; the rest of it no longer exists.
    BodyFailed,
}

impl fmt::Display for NotReplayable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReplayable::Declined => f.write_str("the body cannot be replayed"),
            NotReplayable::TooLarge { limit } => {
                write!(
                    f,
                    "the request body is over its replay limit of {limit} bytes"
                )
            }
            NotReplayable::StillSending => {
                f.write_str("the attempt ended while its request body was still being sent")
            }
            NotReplayable::BodyFailed => f.write_str("the request body failed while being sent"),
        }
    }
}

impl std::error::Error for NotReplayable {}

impl ReplayableBody for Full<Bytes> {
    fn replay(&self) -> Result<Self, NotReplayable> {
        Ok(self.clone())
    }
}

impl ReplayableBody for Empty<Bytes> {
    fn replay(&self) -> Result<Self, NotReplayable> {
        Ok(Empty::new())
    }
}

impl ReplayableBody for Bytes {
    fn replay(&self) -> Result<Self, NotReplayable> {
        Ok(self.clone())
    }
}

impl ReplayableBody for String {
    fn replay(&self) -> Result<Self, NotReplayable> {
        Ok(self.clone())
    }
}

impl ReplayableBody for () {
    fn replay(&self) -> Result<Self, NotReplayable> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn full_bytes_replays_the_same_allocation() {
        let original = Bytes::from(vec![7u8; 4096]);
        let body = Full::new(original.clone());
        let copy = body.replay().unwrap();
        let bytes = copy.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, original);
        assert_eq!(bytes.as_ptr(), original.as_ptr(), "no byte copied");
    }

    #[test]
    fn every_reason_reads_as_a_sentence() {
        assert_eq!(
            NotReplayable::TooLarge { limit: 65536 }.to_string(),
            "the request body is over its replay limit of 65536 bytes"
        );
        assert_eq!(
            NotReplayable::StillSending.to_string(),
            "the attempt ended while its request body was still being sent"
        );
        assert_eq!(
            NotReplayable::BodyFailed.to_string(),
            "the request body failed while being sent"
        );
    }

    #[test]
    fn bytes_replay_shares_memory() {
        let original = Bytes::from(vec![1u8; 100]);
        assert_eq!(original.replay().unwrap().as_ptr(), original.as_ptr());
    }
}
