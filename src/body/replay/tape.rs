//! The recording every copy of a [`ReplayBody`](super::ReplayBody) shares, and who holds it when.
//!
//! One [`Shared`] exists per wrapped body, behind an `Arc` that every copy holds. Its slot holds the
//! [`Tape`]: the original body and every byte recorded from it. The tape has one owner at a time:
//!
//! - **Between turns it lies in the slot.** Any copy can look at it there (`size_hint`,
//!   `is_end_stream`), and `replay` checks there that it can still be replayed.
//! - **The copy that is being sent owns it.** Its first poll takes the tape out of the slot and keeps
//!   it: it sends what earlier copies read, then reads on from the original, recording as it goes.
//!   No other copy can reach the tape meanwhile, so sending takes no lock per frame. A second copy
//!   polled meanwhile gets [`NotReplayable::StillSending`] rather than bytes interleaved with the
//!   first one's, and `replay` refuses to make a copy.
//! - **It hands the tape back** ([`Shared::hand_back`]) when it has yielded its last frame, or when it
//!   is dropped part-way (an abandoned attempt). The tasks that wait for the tape in `poll_replay`
//!   ([`Shared::poll_returned`]) are woken then, not before.
//!
//! The bytes recorded are also counted outside the tape, so any copy can read the count at any time.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::body::NotReplayable;
use crate::BoxError;

/// Chunks shorter than this are copied into blocks rather than recorded one by one: a `Bytes` handle
/// costs 32 bytes, so a body of one-byte chunks would otherwise hold 33 times its size.
const SMALL_CHUNK: usize = 512;
/// The size a block of small chunks grows to before it is sealed into the recording.
pub(super) const BLOCK: usize = 4096;

/// The tape as its owner holds it: pinned, because the original body may not be `Unpin`.
pub(super) type HeldTape<B> = Pin<Box<Tape<B>>>;

/// The state every copy of one body shares.
pub(super) struct Shared<B> {
    /// The tape between turns; `None` while a copy is being sent.
    slot: Mutex<Option<HeldTape<B>>>,
    /// The most bytes recorded before the body stops being replayable.
    pub(super) limit: u64,
    /// The original's size hint when it was wrapped: the best guess for a copy that cannot look.
    pub(super) whole: SizeHint,
    /// Bytes the recording holds, readable from any copy at any time.
    pub(super) recorded: AtomicU64,
    /// Tasks waiting for the tape to come back; registered while the slot is locked, so a hand-back
    /// cannot slip between the look and the registration.
    waiting: Mutex<Vec<Waker>>,
}

/// How far one copy has got.
#[derive(Default)]
pub(super) struct Position {
    /// Bytes this copy has yielded.
    pub(super) sent: u64,
    /// The next recorded chunk this copy sends.
    chunk: usize,
    /// This copy has yielded its last frame (and hands the tape back).
    pub(super) done: bool,
}

pin_project! {
    /// The original body and everything recorded from it.
    pub(super) struct Tape<B> {
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

impl<B: Body> Shared<B> {
    /// The shared state of `body`, recording up to `limit` bytes, its tape in the slot. A body whose
    /// size hint is already over `limit` is never recorded.
    pub(super) fn new(body: B, limit: u64) -> Self {
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
        Self {
            slot: Mutex::new(Some(tape)),
            limit,
            whole,
            recorded: AtomicU64::new(0),
            waiting: Mutex::new(Vec::new()),
        }
    }
}

impl<B> Shared<B> {
    /// The slot; a panic elsewhere while it was held cannot leave it inconsistent (it is only ever
    /// swapped), so a poisoned lock is used as is.
    pub(super) fn lock(&self) -> MutexGuard<'_, Option<HeldTape<B>>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the tape for a copy about to be sent; `None` while another copy holds it.
    pub(super) fn take(&self) -> Option<HeldTape<B>> {
        self.lock().take()
    }

    /// Puts the tape back when its owner has sent everything or is dropped, and wakes the tasks
    /// waiting for it.
    pub(super) fn hand_back(&self, mut tape: HeldTape<B>) {
        tape.as_mut().seal_block();
        *self.lock() = Some(tape);
        let waiting =
            std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
        for waker in waiting {
            waker.wake();
        }
    }

    /// Whether a new copy may start now: the tape is in the slot and still replayable.
    pub(super) fn replayable(&self) -> Result<(), NotReplayable> {
        match self.lock().as_deref() {
            None => Err(NotReplayable::StillSending),
            Some(tape) => tape.broken.map_or(Ok(()), Err),
        }
    }

    /// Like [`replayable`](Self::replayable), but waits while a copy holds the tape: the task is woken
    /// when the tape is handed back.
    pub(super) fn poll_returned(&self, cx: &mut Context<'_>) -> Poll<Result<(), NotReplayable>> {
        let slot = self.lock();
        match slot.as_deref() {
            None => {
                let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
                if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    waiting.push(cx.waker().clone());
                }
                Poll::Pending
            }
            Some(tape) => Poll::Ready(tape.broken.map_or(Ok(()), Err)),
        }
    }
}

impl<B> Tape<B> {
    /// Whether a copy that has sent `sent` bytes has nothing left to send.
    pub(super) fn is_drained(&self, sent: u64) -> bool
    where
        B: Body,
    {
        sent >= self.read
            && self.trailers.is_none()
            && (self.ended || self.original.is_end_stream())
    }

    /// What is left for a copy that has sent `sent` bytes.
    pub(super) fn remaining(&self, sent: u64) -> SizeHint
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
    pub(super) fn next_frame(
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
