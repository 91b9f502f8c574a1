//! The recording and its copies, driven by scripted bodies.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};

use super::tape::BLOCK;
use super::{ReplayBody, ReplayBodyService};
use crate::body::{NotReplayable, ReplayableBody};
use crate::BoxError;

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
fn drain<B: Body<Error = io::Error>>(body: &mut ReplayBody<B>) -> (Vec<Bytes>, Option<HeaderMap>) {
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
