//! Reading a response body within its attempt, when the policy buffers responses.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http::Response;
use http_body::Body;

use crate::body::{BodyReadFailed, Buffered, ResponseBody};
use crate::BoxError;

/// How many frames one poll reads before it lets other tasks run: a body of many tiny frames
/// that are always ready must not hold the thread.
const FRAMES_PER_POLL: u32 = 64;

/// A response whose body is being read: its head, the body and what was read so far (in one
/// allocation, which the response's body then takes as it is), and what the limit counted.
pub(super) struct Read<B: Body> {
    buffer: Option<Pin<Box<Buffered<B>>>>,
    read: usize,
    limit: usize,
}

impl<B> Read<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    /// Starts reading `response`'s body, up to `limit` bytes.
    #[inline(never)]
    pub(super) fn new(response: Response<B>, limit: usize) -> Self {
        Self {
            buffer: Some(Buffered::new(response)),
            read: 0,
            limit,
        }
    }

    /// Reads on, frame after frame while they are ready: `Ready` with the response (the whole
    /// body ready, or the prefix and the rest when it is longer than the limit), or with a
    /// [`BodyReadFailed`].
    pub(super) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Response<ResponseBody<B>>, BoxError>> {
        let Some(buffer) = self.buffer.as_mut() else {
            panic!("a read polled after it ended");
        };
        let mut polled = 0;
        loop {
            polled += 1;
            if polled > FRAMES_PER_POLL {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            match buffer.as_mut().poll_inner(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    buffer.as_mut().end();
                    break;
                }
                Poll::Ready(Some(Err(error))) => {
                    self.buffer = None;
                    return Poll::Ready(Err(Box::new(BodyReadFailed::new(error))));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let length = match frame.data_ref().map(Buf::remaining) {
                        // An empty data frame carries nothing: not kept, so endless empty frames
                        // cannot grow the read.
                        Some(0) => continue,
                        Some(length) => length,
                        // Trailers count against the limit too (their names and values), so
                        // that a body of endless trailers frames cannot grow the read.
                        None => frame.trailers_ref().map_or(0, trailers_length).max(1),
                    };
                    self.read = self.read.saturating_add(length);
                    buffer.as_mut().keep(frame);
                    // Over the limit, the inner body stays open: the caller reads the rest.
                    if self.read > self.limit {
                        break;
                    }
                }
            }
        }
        match self.buffer.take().and_then(Buffered::into_response) {
            Some(response) => Poll::Ready(Ok(response)),
            None => panic!("a read polled after it ended"),
        }
    }
}

/// What a trailers frame holds, for the limit: its names and values.
fn trailers_length(trailers: &http::HeaderMap) -> usize {
    trailers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}
