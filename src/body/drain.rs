//! Reading a discarded response body to its end, up to a limit, so an HTTP/1.1 connection can be reused.
//!
//! hyper returns a connection to its pool only once the response body has been read to the end; a body
//! dropped half-read closes the connection. Draining runs while the backoff wait runs, so it adds no
//! latency: it stops at the end of the body, at the byte limit, at a body error, or when the wait ends.
//!
//! A body can be always ready (an endless stream, or empty frames sent as keep-alives): each poll reads
//! a bounded amount and then yields, so the wait's timer and the call's deadline are looked at between
//! two rounds and the runtime thread stays free for other tasks. Every frame costs at least one byte of
//! the limit, so a stream of empty frames ends too.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::Body;
use pin_project_lite::pin_project;

/// Frames read in one poll before the drain yields.
const FRAMES_PER_POLL: u32 = 64;
/// Bytes read in one poll before the drain yields.
const BYTES_PER_POLL: u64 = 64 * 1024;

pin_project! {
    /// A response body being read and thrown away. Pinned where it lives (the response future's
    /// waiting state), so draining allocates nothing.
    pub(crate) struct Drain<B> {
        #[pin]
        body: B,
        left: u64,
    }
}

impl<B: Body> Drain<B> {
    /// Starts draining `body`, or returns `None` when there is nothing to read: a zero limit, an ended
    /// body, or a known length already over `limit`.
    #[inline]
    pub(crate) fn new(body: B, limit: u64) -> Option<Self> {
        if limit == 0 || body.is_end_stream() || body.size_hint().lower() > limit {
            return None;
        }
        Some(Self { body, left: limit })
    }

    /// Reads what is ready, a bounded amount per call; `Ready` once there is nothing more worth
    /// reading. After a full round it wakes the task and returns `Pending`: the caller looks at its
    /// timers and comes back.
    pub(crate) fn poll_drain(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let (mut frames, mut bytes) = (0u32, 0u64);
        loop {
            if frames >= FRAMES_PER_POLL || bytes >= BYTES_PER_POLL {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            match this.body.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) | Poll::Ready(Some(Err(_))) => return Poll::Ready(()),
                Poll::Ready(Some(Ok(frame))) => {
                    let len = frame.data_ref().map_or(0, |data| {
                        u64::try_from(data.remaining()).unwrap_or(u64::MAX)
                    });
                    // An empty frame is not free: a stream of them ends like any other.
                    match this.left.checked_sub(len.max(1)) {
                        Some(left) => *this.left = left,
                        None => return Poll::Ready(()),
                    }
                    frames += 1;
                    bytes = bytes.saturating_add(len);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::Full;
    use std::convert::Infallible;
    use std::future::poll_fn;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_body_longer_than_the_limit_is_not_drained() {
        assert!(Drain::new(Full::new(Bytes::from(vec![0u8; 100])), 99).is_none());
        assert!(Drain::new(Full::new(Bytes::from(vec![0u8; 100])), 100).is_some());
    }

    /// An endless, always-ready body that repeats one chunk and counts how many frames were read.
    struct Endless {
        chunk: Bytes,
        read: Arc<AtomicUsize>,
    }

    impl Endless {
        /// 1 KiB chunks.
        fn kib(read: &Arc<AtomicUsize>) -> Self {
            Self {
                chunk: Bytes::from(vec![0u8; 1024]),
                read: read.clone(),
            }
        }

        /// Empty frames, as a peer's keep-alives.
        fn empty(read: &Arc<AtomicUsize>) -> Self {
            Self {
                chunk: Bytes::new(),
                read: read.clone(),
            }
        }
    }

    impl Body for Endless {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
            self.read.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(Some(Ok(http_body::Frame::data(self.chunk.clone()))))
        }
    }

    #[test]
    fn a_zero_limit_never_reads_even_a_body_of_unknown_length() {
        let read = Arc::new(AtomicUsize::new(0));
        assert!(Drain::new(Endless::kib(&read), 0).is_none());
        assert_eq!(read.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn draining_stops_at_the_limit() {
        let read = Arc::new(AtomicUsize::new(0));
        let mut drain = std::pin::pin!(Drain::new(Endless::kib(&read), 10 * 1024).unwrap());
        poll_fn(|cx| drain.as_mut().poll_drain(cx)).await;
        assert_eq!(
            read.load(Ordering::SeqCst),
            11,
            "ten chunks fit, the eleventh goes over"
        );
    }

    #[test]
    fn each_poll_reads_a_bounded_amount_then_yields_and_wakes() {
        let read = Arc::new(AtomicUsize::new(0));
        let mut drain = std::pin::pin!(Drain::new(Endless::empty(&read), u64::MAX).unwrap());
        let woken = Arc::new(AtomicUsize::new(0));
        struct Count(Arc<AtomicUsize>);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let waker = std::task::Waker::from(Arc::new(Count(woken.clone())));
        let mut cx = Context::from_waker(&waker);
        assert!(drain.as_mut().poll_drain(&mut cx).is_pending());
        assert_eq!(read.load(Ordering::SeqCst), FRAMES_PER_POLL as usize);
        assert_eq!(
            woken.load(Ordering::SeqCst),
            1,
            "it asks to be polled again"
        );
        let mut drain = std::pin::pin!(Drain::new(Endless::kib(&read), u64::MAX).unwrap());
        read.store(0, Ordering::SeqCst);
        assert!(drain.as_mut().poll_drain(&mut cx).is_pending());
        assert_eq!(read.load(Ordering::SeqCst), 64, "64 KiB in 1 KiB frames");
    }

    #[tokio::test]
    async fn a_stream_of_empty_frames_ends_at_the_limit() {
        let read = Arc::new(AtomicUsize::new(0));
        let mut drain = std::pin::pin!(Drain::new(Endless::empty(&read), 1000).unwrap());
        poll_fn(|cx| drain.as_mut().poll_drain(cx)).await;
        assert_eq!(read.load(Ordering::SeqCst), 1001);
    }

    #[tokio::test]
    async fn draining_ends_with_the_body() {
        let mut drain =
            std::pin::pin!(Drain::new(Full::new(Bytes::from_static(b"abc")), 1024).unwrap());
        poll_fn(|cx| drain.as_mut().poll_drain(cx)).await;
        assert_eq!(drain.left, 1021);
    }
}
