//! [`ReplayBody`]: a body read once, recorded, and replayed to every later attempt.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::tape::{HeldTape, Position, Shared, Tape};

use crate::body::{NotReplayable, ReplayableBody};
use crate::BoxError;

/// The default number of bytes a [`ReplayBody`] records before giving up on replaying: 64 KiB.
pub(crate) const DEFAULT_REPLAY_LIMIT: u64 = 64 * 1024;

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
    /// The tape, while this copy is the one being sent (see [`tape`](super::tape) for who holds it when).
    tape: Option<HeldTape<B>>,
    /// Where this copy stands in the body.
    position: Position,
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
        Self::copy_of(Arc::new(Shared::new(body, limit)))
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
        if let Some(tape) = self.tape.take() {
            self.shared.hand_back(tape);
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
            None => match this.shared.take() {
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
        self.shared.replayable()?;
        Ok(Self::copy_of(self.shared.clone()))
    }

    /// Waits while another copy holds the tape; it wakes the task when it hands the tape back (sent
    /// whole, or dropped).
    fn poll_replay(&self, cx: &mut Context<'_>) -> Poll<Result<Self, NotReplayable>> {
        self.shared
            .poll_returned(cx)
            .map_ok(|()| Self::copy_of(self.shared.clone()))
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
