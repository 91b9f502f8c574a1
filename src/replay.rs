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
//! use tower_http_retry::{ReplayBody, ReplayBodyLayer, RetryHistory, RetryLayer, RetryPolicy};
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
//! assert_eq!(response.body(), "15", "the retry sent the whole body again");
//! assert_eq!(RetryHistory::resend_count(response.extensions()), 1);
//! # }
//! ```
//!
//! # Which bodies need it
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
//! # How it works, and what it costs
//!
//! The first attempt streams the original body as it comes and records each chunk by reference (a
//! `Bytes` chunk is not copied; any other `Buf` is copied once into `Bytes`). A retry first sends the
//! recording, then streams whatever the original had not yet yielded, recording that too, so a server
//! that answered before reading the whole upload still gets every byte exactly once. Trailers are
//! recorded and sent again. `size_hint` and `is_end_stream` are exact for every copy, with one
//! exception: a body that ends in trailers never reports an exact length, because HTTP/1.1 would then
//! be sent with a `Content-Length` and lose its trailers.
//!
//! - **Memory**: at most the limit of recorded bytes per request ([`DEFAULT_REPLAY_LIMIT`], 64 KiB;
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
//! # One copy at a time
//!
//! Copies take turns: the copy being sent holds the recording and the original, and hands them on when
//! it has sent everything or is dropped. A copy polled while another is still being sent yields an
//! error frame ([`NotReplayable::StillSending`]) rather than a corrupt body. [`ReplayableBody::replay`]
//! makes a new copy, and refuses to while a copy is in the middle of being sent.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, Request};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::{NotReplayable, ReplayableBody};
use crate::error::BoxError;

/// The default number of bytes a [`ReplayBody`] records before giving up on replaying: 64 KiB.
pub const DEFAULT_REPLAY_LIMIT: u64 = 64 * 1024;

/// Chunks shorter than this are copied into blocks rather than recorded one by one: a `Bytes` handle
/// costs 32 bytes, so a body of one-byte chunks would otherwise hold 33 times its size.
const SMALL_CHUNK: usize = 512;
/// The size a block of small chunks grows to before it is sealed into the recording.
const BLOCK: usize = 4096;

/// A request body that records what it sends so it can be sent again; see the [module docs](self).
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use tower_http_retry::body::ReplayableBody;
/// use tower_http_retry::ReplayBody;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let body = ReplayBody::new(Full::new(Bytes::from_static(b"hello")).boxed());
/// let again = body.replay().unwrap();
/// assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
/// assert_eq!(again.collect().await.unwrap().to_bytes(), "hello");
/// # }
/// ```
pub struct ReplayBody<B> {
    shared: Arc<Shared<B>>,
    /// The tape, while this copy is the one being sent.
    tape: Option<Pin<Box<Tape<B>>>>,
    /// Where this copy stands in the body.
    position: Position,
}

/// How far one copy has got.
#[derive(Default)]
struct Position {
    /// Bytes this copy has yielded.
    sent: u64,
    /// The next recorded chunk this copy sends.
    chunk: usize,
    /// This copy has yielded its last frame (and hands the tape on).
    done: bool,
}

struct Shared<B> {
    /// The tape between turns; `None` while a copy is being sent.
    slot: Mutex<Option<Pin<Box<Tape<B>>>>>,
    limit: u64,
    /// The original's size hint when it was wrapped: the best guess for a copy that cannot look.
    whole: SizeHint,
    /// Bytes the recording holds, readable from any copy at any time.
    recorded: AtomicU64,
    /// Tasks waiting for the tape to come back ([`ReplayableBody::poll_replay`]); registered while
    /// the slot is locked, so a hand-on cannot slip between the look and the registration.
    waiting: Mutex<Vec<Waker>>,
}

pin_project! {
    /// The original body and everything recorded from it.
    struct Tape<B> {
        #[pin]
        original: B,
        // Every byte read from the original so far, in order, while the recording is kept.
        chunks: Vec<Bytes>,
        // Small chunks being copied together; sealed into `chunks` before another copy replays.
        block: BytesMut,
        // Bytes read from the original so far.
        read: u64,
        trailers: Option<HeaderMap>,
        // The original has nothing more to yield.
        ended: bool,
        // Why the recording can no longer be replayed, once it cannot.
        broken: Option<NotReplayable>,
    }
}

impl<B: Body> ReplayBody<B> {
    /// Wraps `body`, recording up to [`DEFAULT_REPLAY_LIMIT`] bytes.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower_http_retry::body::{NotReplayable, ReplayableBody};
    /// use tower_http_retry::{ReplayBody, DEFAULT_REPLAY_LIMIT};
    ///
    /// let body = ReplayBody::new(Full::new(Bytes::from_static(b"{\"amount\": 100}")));
    /// assert_eq!(body.limit(), DEFAULT_REPLAY_LIMIT);
    /// assert!(body.replay().is_ok());
    ///
    /// let large = ReplayBody::new(Full::new(Bytes::from(vec![0u8; 100 * 1024])));
    /// let too_large = NotReplayable::TooLarge {
    ///     limit: DEFAULT_REPLAY_LIMIT,
    /// };
    /// assert_eq!(large.replay().err(), Some(too_large));
    /// ```
    pub fn new(body: B) -> Self {
        Self::with_limit(body, DEFAULT_REPLAY_LIMIT)
    }

    /// Wraps `body`, recording up to `limit` bytes. A body whose size hint is already over `limit` is
    /// streamed untouched and never recorded.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::{BodyExt, Full};
    /// use tower_http_retry::body::{NotReplayable, ReplayableBody};
    /// use tower_http_retry::ReplayBody;
    ///
    /// let large = Full::new(Bytes::from(vec![0u8; 2048])).boxed();
    /// let body = ReplayBody::with_limit(large, 1024);
    /// assert_eq!(body.replay().err(), Some(NotReplayable::TooLarge { limit: 1024 }));
    /// ```
    pub fn with_limit(body: B, limit: u64) -> Self {
        let whole = body.size_hint();
        let broken = (whole.lower() > limit).then_some(NotReplayable::TooLarge { limit });
        let tape = Box::pin(Tape {
            original: body,
            chunks: Vec::new(),
            block: BytesMut::new(),
            read: 0,
            trailers: None,
            ended: false,
            broken,
        });
        let shared = Arc::new(Shared {
            slot: Mutex::new(Some(tape)),
            limit,
            whole,
            recorded: AtomicU64::new(0),
            waiting: Mutex::new(Vec::new()),
        });
        Self::copy_of(shared)
    }
}

impl<B> ReplayBody<B> {
    fn copy_of(shared: Arc<Shared<B>>) -> Self {
        Self {
            shared,
            tape: None,
            position: Position::default(),
        }
    }

    /// The most bytes this body records.
    pub fn limit(&self) -> u64 {
        self.shared.limit
    }

    /// The bytes the recording holds now (shared by every copy): never more than [`limit`](Self::limit),
    /// and 0 once the body went past it.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::{BodyExt, Full};
    /// use tower_http_retry::body::ReplayableBody;
    /// use tower_http_retry::ReplayBody;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let body = ReplayBody::with_limit(Full::new(Bytes::from(vec![0u8; 600])).boxed(), 1024);
    /// let copy = body.replay().unwrap();
    /// assert_eq!(copy.recorded_bytes(), 0, "nothing is recorded before the body is sent");
    /// body.collect().await.unwrap();
    /// assert_eq!(copy.recorded_bytes(), 600);
    /// # }
    /// ```
    pub fn recorded_bytes(&self) -> u64 {
        self.shared.recorded.load(Ordering::Relaxed)
    }

    /// Ends this copy's turn: it has sent everything, or is being dropped.
    fn hand_on(&mut self) {
        if let Some(mut tape) = self.tape.take() {
            tape.as_mut().seal_block();
            *self.shared.lock() = Some(tape);
            let waiting = std::mem::take(
                &mut *self
                    .shared
                    .waiting
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            for waker in waiting {
                waker.wake();
            }
        }
    }

    /// Runs `f` on the tape, wherever it is; `None` while another copy holds it.
    fn look<T>(&self, f: impl FnOnce(&Tape<B>) -> T) -> Option<T> {
        match &self.tape {
            Some(tape) => Some(f(tape)),
            None => self.shared.lock().as_deref().map(f),
        }
    }
}

impl<B> Shared<B> {
    /// The slot; a panic elsewhere while it was held cannot leave it inconsistent (it is only ever
    /// swapped), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, Option<Pin<Box<Tape<B>>>>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<B> Tape<B> {
    /// Whether a copy that has sent `sent` bytes has nothing left to send.
    fn is_drained(&self, sent: u64) -> bool
    where
        B: Body,
    {
        sent >= self.read
            && self.trailers.is_none()
            && (self.ended || self.original.is_end_stream())
    }

    /// What is left for a copy that has sent `sent` bytes.
    fn remaining(&self, sent: u64) -> SizeHint
    where
        B: Body,
    {
        let replay = self.read.saturating_sub(sent);
        let mut hint = SizeHint::new();
        if self.ended {
            // A known length makes HTTP/1.1 send a Content-Length, which has no room for trailers: a
            // body that ends in trailers keeps an open upper bound, as a chunked original had.
            hint.set_lower(replay);
            if self.trailers.is_none() {
                hint.set_upper(replay);
            }
            return hint;
        }
        let rest = self.original.size_hint();
        hint.set_lower(rest.lower().saturating_add(replay));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(replay));
        }
        hint
    }

    /// Moves the small chunks copied so far into the recording.
    fn seal_block(self: Pin<&mut Self>) {
        let this = self.project();
        if !this.block.is_empty() {
            this.chunks.push(this.block.split().freeze());
        }
    }

    /// Adds a chunk just read from the original (and already counted in `read`) to the recording, or
    /// drops the recording when it goes past the limit.
    fn record(self: Pin<&mut Self>, chunk: &Bytes, shared: &Shared<B>) {
        let this = self.project();
        if this.broken.is_some() || chunk.is_empty() {
            return;
        }
        if *this.read > shared.limit {
            *this.broken = Some(NotReplayable::TooLarge {
                limit: shared.limit,
            });
            *this.chunks = Vec::new();
            *this.block = BytesMut::new();
            shared.recorded.store(0, Ordering::Relaxed);
            return;
        }
        if chunk.len() < SMALL_CHUNK {
            if this.block.capacity() == 0 {
                this.block.reserve(BLOCK);
            }
            this.block.extend_from_slice(chunk);
            if this.block.len() >= BLOCK {
                this.chunks.push(this.block.split().freeze());
            }
        } else {
            if !this.block.is_empty() {
                this.chunks.push(this.block.split().freeze());
            }
            this.chunks.push(chunk.clone());
        }
        shared.recorded.store(*this.read, Ordering::Relaxed);
    }

    /// The next frame for a copy at `position`: first what earlier copies read, then the original.
    /// Marks the position done with the copy's last frame.
    fn next_frame(
        mut self: Pin<&mut Self>,
        position: &mut Position,
        shared: &Shared<B>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        // Only bytes read before this copy started are replayed: a copy never sees its own bytes again.
        if position.sent < self.read {
            let this = self.as_mut().project();
            if let Some(why) = *this.broken {
                return Poll::Ready(Some(Err(Box::new(why))));
            }
            // Always there: while it is kept, the recording holds every byte read.
            let Some(chunk) = this.chunks.get(position.chunk).cloned() else {
                return Poll::Ready(Some(Err(Box::new(NotReplayable::Declined))));
            };
            position.chunk += 1;
            position.sent += chunk.len() as u64;
            position.done = self.is_drained(position.sent);
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if !self.ended {
            let this = self.as_mut().project();
            match ready!(this.original.poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let frame = frame.map_data(|mut data| data.copy_to_bytes(data.remaining()));
                    if let Some(chunk) = frame.data_ref() {
                        *this.read += chunk.len() as u64;
                        position.sent = *this.read;
                        self.as_mut().record(chunk, shared);
                        let this = self.project();
                        if this.original.is_end_stream() {
                            *this.ended = true;
                            position.done = true;
                        }
                    } else if let Some(trailers) = frame.trailers_ref() {
                        *this.trailers = Some(trailers.clone());
                        *this.ended = true;
                        position.done = true;
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Some(Err(error)) => {
                    *this.broken = Some(NotReplayable::BodyFailed);
                    *this.chunks = Vec::new();
                    *this.block = BytesMut::new();
                    shared.recorded.store(0, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(error.into())));
                }
                None => *this.ended = true,
            }
        }
        position.done = true;
        Poll::Ready(self.trailers.clone().map(|t| Ok(Frame::trailers(t))))
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.position.done {
            return Poll::Ready(None);
        }
        let tape = match &mut this.tape {
            Some(tape) => tape,
            None => match this.shared.lock().take() {
                Some(tape) => this.tape.insert(tape),
                None => return Poll::Ready(Some(Err(Box::new(NotReplayable::StillSending)))),
            },
        };
        let polled = ready!(tape
            .as_mut()
            .next_frame(&mut this.position, &this.shared, cx));
        if this.position.done {
            this.hand_on();
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.position.done
            || self
                .look(|tape| tape.is_drained(self.position.sent))
                .unwrap_or(false)
    }

    fn size_hint(&self) -> SizeHint {
        if self.position.done {
            return SizeHint::with_exact(0);
        }
        self.look(|tape| tape.remaining(self.position.sent))
            .unwrap_or(self.shared.whole)
    }
}

impl<B> ReplayableBody for ReplayBody<B> {
    /// A new copy that sends the whole body from its first byte, unless the body went past its limit,
    /// failed, or is in the middle of being sent by another copy.
    fn replay(&self) -> Result<Self, NotReplayable> {
        match self.shared.lock().as_deref() {
            None => Err(NotReplayable::StillSending),
            Some(tape) => match tape.broken {
                Some(why) => Err(why),
                None => Ok(Self::copy_of(self.shared.clone())),
            },
        }
    }

    /// Waits while another copy holds the tape; it wakes the task when it hands the tape back (sent
    /// whole, or dropped).
    fn poll_replay(&self, cx: &mut Context<'_>) -> Poll<Result<Self, NotReplayable>> {
        let slot = self.shared.lock();
        match slot.as_deref() {
            None => {
                let mut waiting = self
                    .shared
                    .waiting
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    waiting.push(cx.waker().clone());
                }
                Poll::Pending
            }
            Some(tape) => Poll::Ready(match tape.broken {
                Some(why) => Err(why),
                None => Ok(Self::copy_of(self.shared.clone())),
            }),
        }
    }
}

impl<B> Drop for ReplayBody<B> {
    fn drop(&mut self) {
        self.hand_on();
    }
}

impl<B> std::fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayBody")
            .field("limit", &self.shared.limit)
            .field("recorded", &self.recorded_bytes())
            .field("sent", &self.position.sent)
            .field("sending", &self.tape.is_some())
            .field("done", &self.position.done)
            .finish()
    }
}

/// Wraps every request's body in a [`ReplayBody`], so a [`RetryLayer`](crate::RetryLayer) inside it can
/// replay bodies that are not `Clone`. Put it right outside the retry layer.
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_http_retry::{ReplayBody, ReplayBodyLayer, RetryLayer, RetryPolicy};
/// # type Upload = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, std::convert::Infallible>;
/// # let client = tower::service_fn(|_: http::Request<ReplayBody<Upload>>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// # });
///
/// let service = ServiceBuilder::new()
///     .layer(ReplayBodyLayer::new().limit(256 * 1024))
///     .layer(RetryLayer::new(RetryPolicy::default()))
///     .service(client);
/// # fn accepts_uploads<S: tower::Service<http::Request<Upload>>>(_: &S) {}
/// # accepts_uploads(&service);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ReplayBodyLayer {
    limit: u64,
}

impl ReplayBodyLayer {
    /// A layer whose bodies record up to [`DEFAULT_REPLAY_LIMIT`] bytes.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, Response};
    /// use http_body_util::Full;
    /// use tower::{service_fn, Layer, ServiceExt};
    /// use tower_http_retry::{ReplayBody, ReplayBodyLayer, DEFAULT_REPLAY_LIMIT};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let inner = service_fn(|request: Request<ReplayBody<Full<Bytes>>>| async move {
    ///     Ok::<_, Infallible>(Response::new(request.into_body().limit()))
    /// });
    /// let service = ReplayBodyLayer::new().layer(inner);
    /// let request = Request::new(Full::new(Bytes::new()));
    /// let response = service.oneshot(request).await.unwrap();
    /// assert_eq!(*response.body(), DEFAULT_REPLAY_LIMIT);
    /// # }
    /// ```
    pub fn new() -> Self {
        Self {
            limit: DEFAULT_REPLAY_LIMIT,
        }
    }

    /// Records up to `bytes` of each request body; a longer body is sent once and not retried.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, Response};
    /// use http_body_util::Full;
    /// use tower::{service_fn, Layer, ServiceExt};
    /// use tower_http_retry::body::ReplayableBody;
    /// use tower_http_retry::{ReplayBody, ReplayBodyLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // Reports whether the body it receives could be sent again.
    /// let inner = service_fn(|request: Request<ReplayBody<Full<Bytes>>>| async move {
    ///     Ok::<_, Infallible>(Response::new(request.body().replay().is_ok()))
    /// });
    /// let service = ReplayBodyLayer::new().limit(4).layer(inner);
    /// let replayable = |body: &'static [u8]| {
    ///     let request = Request::new(Full::new(Bytes::from_static(body)));
    ///     service.clone().oneshot(request)
    /// };
    /// assert!(replayable(b"1234").await.unwrap().into_body());
    /// assert!(!replayable(b"12345").await.unwrap().into_body());
    /// # }
    /// ```
    pub fn limit(mut self, bytes: u64) -> Self {
        self.limit = bytes;
        self
    }
}

impl Default for ReplayBodyLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for ReplayBodyLayer {
    type Service = ReplayBodyService<S>;

    fn layer(&self, inner: S) -> ReplayBodyService<S> {
        ReplayBodyService {
            inner,
            limit: self.limit,
        }
    }
}

/// Wraps each request's body in a [`ReplayBody`] and passes the request on. Made by [`ReplayBodyLayer`].
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
/// use tower::{Layer, ServiceExt};
/// use tower_http_retry::{ReplayBody, ReplayBodyLayer};
///
/// type Upload = UnsyncBoxBody<Bytes, Infallible>;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let inner = tower::service_fn(|request: http::Request<ReplayBody<Upload>>| async move {
///     Ok::<_, Infallible>(http::Response::new(request.into_body().limit()))
/// });
/// let service = ReplayBodyLayer::new().limit(1 << 20).layer(inner);
/// let upload: Upload = Full::new(Bytes::from_static(b"data")).boxed_unsync();
/// let response = service.oneshot(http::Request::new(upload)).await.unwrap();
/// assert_eq!(*response.body(), 1 << 20, "the body was wrapped with the layer's limit");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ReplayBodyService<S> {
    inner: S,
    limit: u64,
}

impl<S> ReplayBodyService<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for ReplayBodyService<S>
where
    S: Service<Request<ReplayBody<B>>>,
    B: Body,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> S::Future {
        let limit = self.limit;
        self.inner
            .call(request.map(|body| ReplayBody::with_limit(body, limit)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::io;
    use std::task::Waker;

    use http::HeaderValue;

    /// What a scripted body does on each poll.
    enum Item {
        Data(Bytes),
        Trailers(HeaderMap),
        Fail,
        /// Not ready yet, once.
        Wait,
    }

    /// A one-shot body that yields its script; its size hint is exact or unknown.
    struct Scripted {
        items: VecDeque<Item>,
        exact: bool,
    }

    impl Scripted {
        fn new(items: impl IntoIterator<Item = Item>, exact: bool) -> Self {
            Self {
                items: items.into_iter().collect(),
                exact,
            }
        }

        fn chunks(chunks: &[&'static [u8]], exact: bool) -> Self {
            Self::new(
                chunks.iter().map(|c| Item::Data(Bytes::from_static(c))),
                exact,
            )
        }
    }

    impl Body for Scripted {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
            match self.items.pop_front() {
                None => Poll::Ready(None),
                Some(Item::Data(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
                Some(Item::Trailers(t)) => Poll::Ready(Some(Ok(Frame::trailers(t)))),
                Some(Item::Fail) => Poll::Ready(Some(Err(io::Error::other("upload broke")))),
                Some(Item::Wait) => Poll::Pending,
            }
        }

        fn is_end_stream(&self) -> bool {
            self.exact && self.items.iter().all(|i| matches!(i, Item::Wait))
        }

        fn size_hint(&self) -> SizeHint {
            if !self.exact {
                return SizeHint::default();
            }
            let len = self.items.iter().map(|i| match i {
                Item::Data(d) => d.len() as u64,
                _ => 0,
            });
            SizeHint::with_exact(len.sum())
        }
    }

    type Polled = Poll<Option<Result<Frame<Bytes>, BoxError>>>;

    fn poll<B: Body<Error = io::Error>>(body: &mut ReplayBody<B>) -> Polled {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(body).poll_frame(&mut cx)
    }

    fn data(polled: Polled) -> Bytes {
        match polled {
            Poll::Ready(Some(Ok(frame))) => frame.into_data().expect("a data frame"),
            _ => panic!("expected a data frame"),
        }
    }

    /// Every frame until the end: the data chunks and the trailers.
    fn drain<B: Body<Error = io::Error>>(
        body: &mut ReplayBody<B>,
    ) -> (Vec<Bytes>, Option<HeaderMap>) {
        let (mut chunks, mut trailers) = (Vec::new(), None);
        loop {
            match poll(body) {
                Poll::Ready(None) => return (chunks, trailers),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(chunk) => chunks.push(chunk),
                    Err(frame) => trailers = frame.into_trailers().ok(),
                },
                Poll::Ready(Some(Err(error))) => panic!("body failed: {error}"),
                Poll::Pending => panic!("body not ready"),
            }
        }
    }

    fn concat(chunks: &[Bytes]) -> Vec<u8> {
        chunks.concat()
    }

    fn trailers() -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert("grpc-status", HeaderValue::from_static("0"));
        map
    }

    fn exact_hint(hint: SizeHint) -> Option<u64> {
        hint.exact()
    }

    #[test]
    fn the_first_copy_streams_the_original_chunks_and_records_them_without_copying() {
        let a = Bytes::from(vec![1u8; 1024]);
        let b = Bytes::from(vec![2u8; 2048]);
        let source = Scripted::new([Item::Data(a.clone()), Item::Data(b.clone())], false);
        let template = ReplayBody::new(source);
        let mut first = template.replay().unwrap();
        let (sent, _) = drain(&mut first);
        assert_eq!(
            sent[0].as_ptr(),
            a.as_ptr(),
            "the original chunk, not a copy"
        );
        assert_eq!(sent[1].as_ptr(), b.as_ptr());
        let (replayed, _) = drain(&mut template.replay().unwrap());
        assert_eq!(replayed[0].as_ptr(), a.as_ptr(), "recorded by reference");
        assert_eq!(replayed[1].as_ptr(), b.as_ptr());
        assert_eq!(first.recorded_bytes(), 3072);
    }

    #[test]
    fn a_retry_replays_what_was_read_then_streams_the_rest() {
        let source = Scripted::chunks(&[b"ab", b"cd", b"ef", b"gh"], false);
        let template = ReplayBody::new(source);
        let mut first = template.replay().unwrap();
        assert_eq!(data(poll(&mut first)), "ab");
        assert_eq!(data(poll(&mut first)), "cd");
        drop(first); // the server answered after reading half of the body
        let (second, _) = drain(&mut template.replay().unwrap());
        assert_eq!(concat(&second), b"abcdefgh");
        let (third, _) = drain(&mut template.replay().unwrap());
        assert_eq!(concat(&third), b"abcdefgh");
    }

    /// The retry starts with nothing recorded: every byte read from the original goes out once, and is
    /// never replayed again within the same copy.
    #[test]
    fn an_empty_recording_sends_each_byte_once() {
        // The first copy is never polled (the server answered before asking for the body).
        let template = ReplayBody::new(Scripted::chunks(&[b"one", b"two", b"six"], false));
        drop(template.replay().unwrap());
        let (chunks, _) = drain(&mut template.replay().unwrap());
        assert_eq!(concat(&chunks), b"onetwosix");

        // The first copy took the tape but the original had nothing ready yet.
        let source = Scripted::new(
            [
                Item::Wait,
                Item::Data(Bytes::from_static(b"one")),
                Item::Data(Bytes::from_static(b"two")),
            ],
            true,
        );
        let template = ReplayBody::new(source);
        let mut first = template.replay().unwrap();
        assert!(poll(&mut first).is_pending());
        drop(first);
        let mut second = template.replay().unwrap();
        assert_eq!(data(poll(&mut second)), "one");
        assert_eq!(data(poll(&mut second)), "two");
        assert!(second.is_end_stream());
        assert!(matches!(poll(&mut second), Poll::Ready(None)));
    }

    #[test]
    fn trailers_are_recorded_and_replayed() {
        let source = Scripted::new(
            [
                Item::Data(Bytes::from_static(b"payload")),
                Item::Trailers(trailers()),
            ],
            false,
        );
        let template = ReplayBody::new(source);
        for _ in 0..3 {
            let (chunks, sent_trailers) = drain(&mut template.replay().unwrap());
            assert_eq!(concat(&chunks), b"payload");
            assert_eq!(sent_trailers, Some(trailers()));
        }

        // Trailers alone, and a copy interrupted before them.
        let template = ReplayBody::new(Scripted::new([Item::Trailers(trailers())], false));
        let (chunks, sent_trailers) = drain(&mut template.replay().unwrap());
        assert!(chunks.is_empty());
        assert_eq!(sent_trailers, Some(trailers()));
        let again = template.replay().unwrap();
        assert!(!again.is_end_stream(), "the trailers are still to be sent");
        assert_eq!(drain(&mut { again }).1, Some(trailers()));
    }

    #[test]
    fn past_the_limit_the_attempt_carries_on_and_the_body_is_not_replayable() {
        let template = ReplayBody::with_limit(
            Scripted::chunks(&[b"1234", b"5678", b"9abc", b"defg"], false),
            10,
        );
        let stale = template.replay().unwrap();
        let mut first = template.replay().unwrap();
        let mut sent = Vec::new();
        let mut most = 0;
        loop {
            match poll(&mut first) {
                Poll::Ready(Some(Ok(frame))) => sent.extend_from_slice(&frame.into_data().unwrap()),
                Poll::Ready(None) => break,
                other => panic!("unexpected {:?}", other.map(|_| ())),
            }
            most = most.max(first.recorded_bytes());
        }
        assert_eq!(
            sent, b"123456789abcdefg",
            "the attempt in flight is unharmed"
        );
        assert_eq!(most, 8, "the recording never held more than the limit");
        assert_eq!(first.recorded_bytes(), 0, "and was dropped past it");
        assert_eq!(
            template.replay().err(),
            Some(NotReplayable::TooLarge { limit: 10 })
        );
        // A copy made earlier fails rather than sending part of the body.
        let mut stale = stale;
        match poll(&mut stale) {
            Poll::Ready(Some(Err(error))) => assert_eq!(
                error.downcast_ref::<NotReplayable>(),
                Some(&NotReplayable::TooLarge { limit: 10 })
            ),
            other => panic!("expected an error, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_body_exactly_at_the_limit_is_replayable() {
        let template = ReplayBody::with_limit(Scripted::chunks(&[b"12345", b"67890"], false), 10);
        drain(&mut template.replay().unwrap());
        assert_eq!(template.recorded_bytes(), 10);
        let (chunks, _) = drain(&mut template.replay().unwrap());
        assert_eq!(concat(&chunks), b"1234567890");

        let template = ReplayBody::with_limit(Scripted::chunks(&[b"12345", b"67890"], false), 9);
        drain(&mut template.replay().unwrap());
        assert_eq!(
            template.replay().err(),
            Some(NotReplayable::TooLarge { limit: 9 })
        );
    }

    #[test]
    fn a_size_hint_over_the_limit_is_streamed_untouched_and_never_recorded() {
        let big = Bytes::from(vec![9u8; 2048]);
        let template = ReplayBody::with_limit(Scripted::new([Item::Data(big.clone())], true), 1024);
        let too_large = Some(NotReplayable::TooLarge { limit: 1024 });
        assert_eq!(template.replay().err(), too_large);
        // The future keeps the original when no copy can be made; it streams as is.
        let mut original = template;
        assert_eq!(exact_hint(original.size_hint()), Some(2048));
        let chunk = data(poll(&mut original));
        assert_eq!(chunk.as_ptr(), big.as_ptr());
        assert_eq!(original.recorded_bytes(), 0);
        assert!(original.is_end_stream());
        assert_eq!(original.replay().err(), too_large);
    }

    #[test]
    fn a_copy_still_being_sent_refuses_replay_until_it_is_dropped() {
        let template = ReplayBody::new(Scripted::chunks(&[b"ab", b"cd"], false));
        let mut first = template.replay().unwrap();
        assert_eq!(data(poll(&mut first)), "ab");
        assert_eq!(template.replay().err(), Some(NotReplayable::StillSending));
        drop(first);
        let (chunks, _) = drain(&mut template.replay().unwrap());
        assert_eq!(concat(&chunks), b"abcd");
    }

    #[test]
    fn a_waiting_replay_is_woken_when_the_copy_in_flight_is_dropped() {
        use std::sync::atomic::AtomicUsize;
        struct Count(AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let template = ReplayBody::new(Scripted::chunks(&[b"ab", b"cd"], false));
        let mut sending = template.replay().unwrap();
        let _ = data(poll(&mut sending));
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(template.poll_replay(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        drop(sending);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken by the hand-back");
        let Poll::Ready(Ok(mut again)) = template.poll_replay(&mut cx) else {
            panic!("the tape is back");
        };
        assert_eq!(concat(&drain(&mut again).0), b"abcd");
    }

    #[test]
    fn a_copy_that_sent_everything_hands_on_without_being_dropped() {
        // Unknown length: the end is known when the original yields it.
        let template = ReplayBody::new(Scripted::chunks(&[b"ab", b"cd"], false));
        let mut first = template.replay().unwrap();
        drain(&mut first);
        assert!(
            template.replay().is_ok(),
            "the first copy is still alive but done"
        );

        // Exact length: the end is known with the last chunk, as a transport that stops polling sees it.
        let template = ReplayBody::new(Scripted::chunks(&[b"ab", b"cd"], true));
        let mut first = template.replay().unwrap();
        data(poll(&mut first));
        data(poll(&mut first));
        assert!(first.is_end_stream());
        assert!(template.replay().is_ok());
    }

    #[test]
    fn two_copies_polled_at_once_get_an_error_not_a_mixed_body() {
        let template = ReplayBody::new(Scripted::chunks(&[b"ab", b"cd"], false));
        let mut first = template.replay().unwrap();
        let mut second = template.replay().unwrap();
        assert_eq!(data(poll(&mut first)), "ab");
        match poll(&mut second) {
            Poll::Ready(Some(Err(error))) => assert_eq!(
                error.downcast_ref::<NotReplayable>(),
                Some(&NotReplayable::StillSending)
            ),
            other => panic!("expected an error, got {:?}", other.map(|_| ())),
        }
        assert_eq!(
            data(poll(&mut first)),
            "cd",
            "the copy being sent is unharmed"
        );
    }

    #[test]
    fn a_failing_body_is_not_replayable() {
        let source = Scripted::new([Item::Data(Bytes::from_static(b"ab")), Item::Fail], false);
        let template = ReplayBody::new(source);
        let mut first = template.replay().unwrap();
        data(poll(&mut first));
        assert!(matches!(poll(&mut first), Poll::Ready(Some(Err(_)))));
        drop(first);
        assert_eq!(template.replay().err(), Some(NotReplayable::BodyFailed));
        assert_eq!(template.recorded_bytes(), 0);
    }

    #[test]
    fn size_hint_and_is_end_stream_are_exact_on_every_copy_at_every_step() {
        let chunks: &[&'static [u8]] = &[b"abc", b"defg", b"hi"];
        let template = ReplayBody::new(Scripted::chunks(chunks, true));
        assert_eq!(exact_hint(template.size_hint()), Some(9));
        // First copy reads one chunk and is dropped; second reads two; third reads all.
        for (copy, read) in [(0, 1), (1, 2), (2, 3)] {
            let mut body = template.replay().unwrap();
            let mut left = 9u64;
            for step in 0..read {
                assert_eq!(
                    exact_hint(body.size_hint()),
                    Some(left),
                    "copy {copy}, step {step}"
                );
                assert_eq!(body.is_end_stream(), left == 0);
                left -= data(poll(&mut body)).len() as u64;
            }
            assert_eq!(exact_hint(body.size_hint()), Some(left), "copy {copy}");
            assert_eq!(body.is_end_stream(), left == 0, "copy {copy}");
            drop(body);
            // Copies waiting their turn see the whole body.
            assert_eq!(exact_hint(template.size_hint()), Some(9));
            assert!(!template.is_end_stream());
        }

        // Unknown length: what is recorded is a lower bound for a new copy.
        let template = ReplayBody::new(Scripted::chunks(chunks, false));
        let mut first = template.replay().unwrap();
        data(poll(&mut first));
        drop(first);
        let hint = template.size_hint();
        assert_eq!((hint.lower(), hint.upper()), (3, None));

        // A body ending in trailers never claims an exact length, which would cost it the trailers.
        let source = Scripted::new(
            [
                Item::Data(Bytes::from_static(b"abc")),
                Item::Trailers(trailers()),
            ],
            false,
        );
        let template = ReplayBody::new(source);
        drain(&mut template.replay().unwrap());
        let hint = template.size_hint();
        assert_eq!((hint.lower(), hint.upper()), (3, None));

        // An empty body is at its end before anything is polled, on every copy.
        let empty = ReplayBody::new(Scripted::new([], true));
        assert!(empty.is_end_stream());
        assert!(empty.replay().unwrap().is_end_stream());
        assert_eq!(exact_hint(empty.size_hint()), Some(0));
    }

    #[test]
    fn tiny_chunks_are_recorded_in_blocks() {
        let ones: Vec<Item> = (0..10_000u32)
            .map(|i| Item::Data(Bytes::from(vec![(i % 251) as u8])))
            .collect();
        let expected: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let template = ReplayBody::new(Scripted::new(ones, false));
        let (first, _) = drain(&mut template.replay().unwrap());
        assert_eq!(
            first.len(),
            10_000,
            "the first attempt streams chunks as they come"
        );
        let (replayed, _) = drain(&mut template.replay().unwrap());
        assert_eq!(concat(&replayed), expected);
        assert_eq!(
            replayed.len(),
            10_000usize.div_ceil(BLOCK),
            "in 4 KiB blocks"
        );
    }

    #[test]
    fn replay_body_is_send_and_sync_when_its_body_is() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<ReplayBody<Scripted>>();
        send_sync::<ReplayBodyService<()>>();
    }
}
