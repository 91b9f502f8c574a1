//! A catalogue of hostile but legal response and request bodies: always ready, endless, failing,
//! lying about their size. Each counts the frames it was asked for.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// What a [`Hostile`] body does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An endless stream of empty data frames, always ready (keep-alives).
    EmptyFrames,
    /// An endless stream of 1 KiB data frames, always ready.
    Endless,
    /// One empty frame, then an error.
    EmptyThenError,
    /// 100 bytes, then an error.
    Errors,
    /// Claims exactly 10 bytes and sends 4 KiB.
    HintTooSmall,
    /// Claims at least 1 MiB and sends 10 bytes.
    HintTooLarge,
}

/// Every kind, in the order the tests go through them.
pub const CATALOGUE: [Kind; 6] = [
    Kind::EmptyFrames,
    Kind::Endless,
    Kind::EmptyThenError,
    Kind::Errors,
    Kind::HintTooSmall,
    Kind::HintTooLarge,
];

/// A body of one [`Kind`]; `polls` counts the frames asked for.
pub struct Hostile {
    /// What it does.
    pub kind: Kind,
    /// Frames asked for so far, shared with whoever watches.
    pub polls: Arc<AtomicU64>,
    sent: u64,
}

impl Hostile {
    /// A body of `kind` with a counter of its own.
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            polls: Arc::new(AtomicU64::new(0)),
            sent: 0,
        }
    }

    /// A body of `kind` counting into `polls` (shared by the bodies of several attempts).
    pub fn counted(kind: Kind, polls: Arc<AtomicU64>) -> Self {
        Self {
            kind,
            polls,
            sent: 0,
        }
    }

    /// Whether this body ever ends without an error.
    pub fn ends_well(kind: Kind) -> bool {
        matches!(kind, Kind::HintTooSmall | Kind::HintTooLarge)
    }
}

type Polled = Poll<Option<Result<Frame<Bytes>, io::Error>>>;

impl Body for Hostile {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Polled {
        self.polls.fetch_add(1, Ordering::Relaxed);
        let data = |bytes: Vec<u8>| Poll::Ready(Some(Ok(Frame::data(Bytes::from(bytes)))));
        let failed = || Poll::Ready(Some(Err(io::Error::from(io::ErrorKind::ConnectionReset))));
        let sent = self.sent;
        match self.kind {
            Kind::EmptyFrames => data(Vec::new()),
            Kind::Endless => {
                self.sent += 1024;
                data(vec![0; 1024])
            }
            Kind::EmptyThenError if sent == 0 => {
                self.sent = 1;
                data(Vec::new())
            }
            Kind::EmptyThenError => failed(),
            Kind::Errors if sent == 0 => {
                self.sent = 100;
                data(vec![1; 100])
            }
            Kind::Errors => failed(),
            Kind::HintTooSmall if sent < 4096 => {
                self.sent += 1024;
                data(vec![2; 1024])
            }
            Kind::HintTooLarge if sent == 0 => {
                self.sent = 10;
                data(vec![3; 10])
            }
            Kind::HintTooSmall | Kind::HintTooLarge => Poll::Ready(None),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.kind {
            Kind::HintTooSmall => SizeHint::with_exact(10),
            Kind::HintTooLarge => {
                let mut hint = SizeHint::new();
                hint.set_lower(1024 * 1024);
                hint
            }
            _ => SizeHint::default(),
        }
    }
}
