//! Reading a discarded response body to its end, up to a limit, so an HTTP/1.1 connection can be reused.
//!
//! hyper returns a connection to its pool only once the response body has been read to the end; a body
//! dropped half-read closes the connection. Draining runs while the backoff wait runs, so it adds no
//! latency: it stops at the end of the body, at the byte limit, at a body error, or when the wait ends.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::Body;

/// A response body being read and thrown away.
pub(crate) struct Drain<B> {
    body: Pin<Box<B>>,
    left: u64,
}

impl<B: Body> Drain<B> {
    /// Starts draining `body`, or returns `None` when there is nothing to read: a zero limit, an ended
    /// body, or a known length already over `limit`.
    pub(crate) fn new(body: B, limit: u64) -> Option<Self> {
        if limit == 0 || body.is_end_stream() || body.size_hint().lower() > limit {
            return None;
        }
        Some(Self {
            body: Box::pin(body),
            left: limit,
        })
    }

    /// Reads what is ready; `Ready` once there is nothing more worth reading.
    pub(crate) fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match self.body.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) | Poll::Ready(Some(Err(_))) => return Poll::Ready(()),
                Poll::Ready(Some(Ok(frame))) => {
                    let len = frame.data_ref().map_or(0, |data| data.remaining() as u64);
                    match self.left.checked_sub(len) {
                        Some(left) => self.left = left,
                        None => return Poll::Ready(()),
                    }
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

    /// An endless body of 1 KiB chunks that counts how many were read.
    struct Endless(Arc<AtomicUsize>);
    impl Body for Endless {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![
                0u8;
                1024
            ])))))
        }
    }

    #[test]
    fn a_zero_limit_never_reads_even_a_body_of_unknown_length() {
        let read = Arc::new(AtomicUsize::new(0));
        assert!(Drain::new(Endless(read.clone()), 0).is_none());
        assert_eq!(read.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn draining_stops_at_the_limit() {
        let read = Arc::new(AtomicUsize::new(0));
        let mut drain = Drain::new(Endless(read.clone()), 10 * 1024).unwrap();
        poll_fn(|cx| drain.poll_drain(cx)).await;
        assert_eq!(
            read.load(Ordering::SeqCst),
            11,
            "ten chunks fit, the eleventh goes over"
        );
    }

    #[tokio::test]
    async fn draining_ends_with_the_body() {
        let mut drain = Drain::new(Full::new(Bytes::from_static(b"abc")), 1024).unwrap();
        poll_fn(|cx| drain.poll_drain(cx)).await;
        assert_eq!(drain.left, 1021);
    }
}
