//! Request bodies that can be sent again: the [`ReplayableBody`] trait.
//!
//! A retry needs a second copy of the request body. Bodies that share their bytes ([`Full<Bytes>`],
//! [`Empty`], [`Bytes`]) hand out a copy by reference counting: no byte is copied. `String` is cloned,
//! which copies it; prefer `Full<Bytes>` for large payloads. Bodies that can be read only once (axum's
//! `Body`, hyper's `Incoming`, streams) become replayable in a [`ReplayBody`]: see
//! [below](#bodies-that-can-be-read-only-once).
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
//!
//! # Bodies that can be read only once
//!
//! Replaying any request body: [`ReplayBody`] records what a streaming body sends, so a retry can send
//! it again; [`ReplayBodyLayer`] wraps every request's body in one.
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
//! use tower::{service_fn, BoxError, ServiceBuilder, ServiceExt};
//! use tower_http_retry::body::{ReplayBody, ReplayBodyLayer};
//! use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};
//!
//! // A body that is not `Clone`, like axum's `Body` or hyper's `Incoming`.
//! type Upload = UnsyncBoxBody<Bytes, Infallible>;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! // A server that is unavailable once, then answers with the size of what it received.
//! let failed_once = Arc::new(AtomicBool::new(false));
//! let server = service_fn(move |request: Request<ReplayBody<Upload>>| {
//!     let fail = !failed_once.swap(true, Ordering::SeqCst);
//!     async move {
//!         let received = request.into_body().collect().await?.to_bytes();
//!         let mut response = Response::new(received.len().to_string());
//!         if fail {
//!             *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
//!         }
//!         Ok::<_, BoxError>(response)
//!     }
//! });
//!
//! let client = ServiceBuilder::new()
//!     .layer(ReplayBodyLayer::new()) // the one line: any body, replayed from a 64 KiB recording
//!     .layer(RetryLayer::new(RetryPolicy::default()))
//!     .service(server);
//!
//! let upload: Upload = Full::new(Bytes::from_static(b"{\"amount\": 100}")).boxed_unsync();
//! let request = Request::put("http://api.example/v1/items/7").body(upload).unwrap();
//! let response = client.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.body().get_ref().unwrap(), "15", "the retry sent the whole body again");
//! assert_eq!(RetryHistory::resend_count(response.extensions()), 1);
//! # }
//! ```
//!
//! ## Which bodies need it
//!
//! Bodies that share their bytes (`Full<Bytes>`, `Empty`, `Bytes`) are replayed by reference counting
//! ([`ReplayableBody`]): leave them as they are, they cost nothing to replay. A [`ReplayBody`] is for
//! bodies that can be read only once: axum's `Body`, hyper's `Incoming`, a stream of chunks. Wrapping a
//! `Full<Bytes>` in one works, but adds the costs below for nothing, and a `Full` longer than the limit
//! stops being replayable.
//!
//! That is why recording is a layer of its own rather than something the retry layer does to every
//! body: which path a body takes is decided by its type, once, where the service is built. Without
//! [`ReplayBodyLayer`] every body keeps the zero-copy path (and a one-shot body does not compile); with
//! it, every body is recorded. The same line written by hand is
//! `.map_request(|request: Request<Body>| request.map(ReplayBody::new))`.
//!
//! ## How it works, and what it costs
//!
//! The first attempt streams the original body as it comes and records each chunk by reference (a
//! `Bytes` chunk is not copied; any other `Buf` is copied once into `Bytes`). A retry first sends the
//! recording, then streams whatever the original had not yet yielded, recording that too, so a server
//! that answered before reading the whole upload still gets every byte exactly once. Trailers are
//! recorded and sent again. `size_hint` and `is_end_stream` are exact for every copy, with one
//! exception: a body that ends in trailers never reports an exact length, because HTTP/1.1 would then
//! be sent with a `Content-Length` and lose its trailers.
//!
//! - **Memory**: at most the limit of recorded bytes per request (64 KiB by default;
//!   [`ReplayBodyLayer::limit`] changes it), plus a 32-byte handle per recorded chunk and one block of
//!   up to 4 KiB being filled. Chunks under 512 bytes are copied together into blocks so a
//!   body sent in tiny chunks cannot cost more in bookkeeping than in bytes. A recorded `Bytes` chunk
//!   keeps the buffer it points into alive, as it would in any zero-copy design.
//! - **Past the limit** the recording is dropped; the attempt in flight carries on unharmed, and the
//!   request is not retried: the history says [`NotReplayable::TooLarge`]. A body whose size hint is
//!   already over the limit is streamed untouched and never recorded.
//! - **Time**: two allocations per request and a few uncontended locks per attempt (when it is made,
//!   starts sending and stops), never one per chunk; per chunk, a reference count while recording and
//!   a few comparisons after. Streaming 64 MiB in 16 KiB chunks costs about 20 ns per chunk over the
//!   bare body, which is lost in the cost of any real transport (see the README's "Performance").
//! - **A response that arrives while its request body is still being sent**: that attempt's transport
//!   still owns the body and may still be reading it. A transport that is done with it drops it within
//!   moments (hyper's HTTP/2 pipe after a `REFUSED_STREAM`, or after a response sent before the body
//!   was read), so the retry waits for the copy to come back, during its backoff and up to 100 ms
//!   after it (never past the deadline), through [`ReplayableBody::poll_replay`]. A copy still held
//!   then ends the retries with the last answer, and the history says [`NotReplayable::StillSending`].
//! - An error from the original body ends the retries too ([`NotReplayable::BodyFailed`]): the rest of
//!   the body no longer exists.
//!
//! ## One copy at a time
//!
//! Copies take turns: the copy being sent holds the recording and the original, and hands them on when
//! it has sent everything or is dropped. A copy polled while another is still being sent yields an
//! error frame ([`NotReplayable::StillSending`]) rather than a corrupt body. [`ReplayableBody::replay`]
//! makes a new copy, and refuses to while a copy is in the middle of being sent.
//!
//! # Retrying a stream until its first byte
//!
//! Holding a successful response until its first body byte, so a stream that fails before the caller
//! has seen anything can still be retried.
//!
//! A retry layer returns once the response head arrives; a body that breaks after that belongs to the
//! caller. For streaming APIs (audio synthesis, server-sent events, large downloads) the usual rule is
//! "retry while nothing has been handed over yet, fail once it has". Put a [`FirstByteLayer`] *inside*
//! the retry: it waits for the first frame of every 2xx response body, and turns a body that fails
//! before that frame into an error of the call, which the retry layer classifies like any transport
//! failure (a reset mid-body is "maybe sent": retried for idempotent requests). An empty data frame is
//! not a first byte: it is skipped (and yields to other tasks after a bounded number in a row).
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_http_retry::body::FirstByteLayer;
//! use tower_http_retry::{RetryLayer, RetryPolicy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # let upstream = service_fn(|_: http::Request<Full<Bytes>>| async {
//! #     Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::from_static(b"audio"))))
//! # });
//! let client = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryPolicy::default()))
//!     .layer(FirstByteLayer::new())
//!     .service(upstream);
//!
//! let request = http::Request::get("http://tts.example/stream").body(Full::default()).unwrap();
//! let response = client.oneshot(request).await.unwrap();
//! let audio = response.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(audio, "audio");
//! # }
//! ```
//!
//! The wait for the first frame counts as part of the attempt, so the retry policy's
//! [`attempt_timeout`](crate::RetryPolicy::attempt_timeout) becomes a time-to-first-byte limit.
//! Other statuses are passed through without waiting: the retry layer discards their bodies anyway.

mod call_timeout;
pub(crate) mod drain;
mod first_byte;
mod replay;
mod response;

pub use call_timeout::{CallTimedOut, CallTimeoutBody};
pub use first_byte::{
    BodyFailedBeforeFirstByte, FirstByte, FirstByteBody, FirstByteFuture, FirstByteLayer,
};
#[cfg(feature = "grpc")]
pub(crate) use replay::DEFAULT_REPLAY_LIMIT;
pub use replay::{ReplayBody, ReplayBodyLayer, ReplayBodyService};
pub(crate) use response::Buffered;
pub use response::{BodyReadFailed, ResponseBody};

use std::fmt;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Empty, Full};

/// A request body that can produce another copy of itself for the next attempt.
///
/// A body type that can rebuild itself from what it holds implements it by starting the copy over
/// (a real one also implements
/// [`http_body::Body`](https://docs.rs/http-body/1/http_body/trait.Body.html)):
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
#[diagnostic::on_unimplemented(
    message = "the request body `{Self}` cannot be sent again for a retry",
    label = "not a `ReplayableBody`",
    note = "put a `ReplayBodyLayer` right outside the `RetryLayer`: it records the body as it is sent, so a retry can replay it",
    note = "for a tonic `Channel`, use `tower_http_retry::grpc::GrpcRetryLayer::new(tonic::body::Body::new)` (feature `grpc`)"
)]
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
/// use tower_http_retry::body::{ReplayBody, ReplayBodyLayer};
/// use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};
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
    /// The body's own implementation declines to be replayed (a one-shot body, such as a streamed
    /// `reqwest::Body`). [`ReplayBodyLayer`], outside the retry layer, makes such a body replayable.
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
            NotReplayable::Declined => f.write_str(
                "the body could not be replayed: it can be read only once \
                 (ReplayBodyLayer, outside the retry layer, makes it replayable)",
            ),
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
    #[inline]
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
            NotReplayable::Declined.to_string(),
            "the body could not be replayed: it can be read only once \
             (ReplayBodyLayer, outside the retry layer, makes it replayable)"
        );
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
