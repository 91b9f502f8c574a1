//! [`ReplayBody`]: a body read once, recorded, and replayed to every later attempt.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::body::{NotReplayable, ReplayableBody};
use crate::BoxError;

/// The default number of bytes a [`ReplayBody`] records before giving up on replaying: 64 KiB.
pub(crate) const DEFAULT_REPLAY_LIMIT: u64 = 64 * 1024;

/// Chunks shorter than this are copied into blocks rather than recorded one by one: a `Bytes` handle
/// costs 32 bytes, so a body of one-byte chunks would otherwise hold 33 times its size.
const SMALL_CHUNK: usize = 512;
/// The size a block of small chunks grows to before it is sealed into the recording.
const BLOCK: usize = 4096;

/// A request body that records what it sends so it can be sent again; see the [module docs](crate::body).
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use tower_http_retry::body::ReplayableBody;
/// use tower_http_retry::body::ReplayBody;
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
    /// Wraps `body`, recording up to [`64 * 1024`] bytes.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower_http_retry::body::{NotReplayable, ReplayableBody};
    /// use tower_http_retry::body::ReplayBody;
    ///
    /// let body = ReplayBody::new(Full::new(Bytes::from_static(b"{\"amount\": 100}")));
    /// assert_eq!(body.limit(), 64 * 1024);
    /// assert!(body.replay().is_ok());
    ///
    /// let large = ReplayBody::new(Full::new(Bytes::from(vec![0u8; 100 * 1024])));
    /// let too_large = NotReplayable::TooLarge {
    ///     limit: 64 * 1024,
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
    /// use tower_http_retry::body::ReplayBody;
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
    /// use tower_http_retry::body::ReplayBody;
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

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
