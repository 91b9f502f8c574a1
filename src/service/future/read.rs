//! Reading a response body within its attempt, when the policy buffers responses.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http::response::Parts;
use http::Response;
use http_body::{Body, Frame};

use crate::body::{BodyReadFailed, ResponseBody};
use crate::BoxError;

/// How many frames one poll reads before it lets other tasks run: a body of many tiny frames
/// that are always ready must not hold the thread.
const FRAMES_PER_POLL: u32 = 64;

/// A response whose body is being read: its head, the body, and what was read so far.
pub(super) struct Read<B: Body> {
    head: Option<Parts>,
    // Boxed so the body can move into the response once the read is over (a body over the limit
    // goes on as the rest of the caller's body).
    body: Option<Pin<Box<B>>>,
    frames: VecDeque<Frame<B::Data>>,
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
    pub(super) fn new(response: Response<B>, limit: usize) -> Box<Self> {
        let (head, body) = response.into_parts();
        Box::new(Self {
            head: Some(head),
            body: Some(Box::pin(body)),
            frames: VecDeque::new(),
            read: 0,
            limit,
        })
    }

    /// Reads on: `Ready` with the response (the whole body ready, or the prefix and the rest when
    /// it is longer than the limit), or with a [`BodyReadFailed`].
    pub(super) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Response<ResponseBody<B>>, BoxError>> {
        let Some(body) = self.body.as_mut() else {
            panic!("a read polled after it ended");
        };
        let mut polled = 0;
        let over = loop {
            polled += 1;
            if polled > FRAMES_PER_POLL {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            match body.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => break false,
                Poll::Ready(Some(Err(error))) => {
                    self.body = None;
                    self.frames.clear();
                    return Poll::Ready(Err(Box::new(BodyReadFailed::new(error))));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let length = frame.data_ref().map(Buf::remaining);
                    match length {
                        // An empty data frame carries nothing: not kept, so endless empty frames
                        // cannot grow the read.
                        Some(0) => continue,
                        Some(length) => {
                            self.read = self.read.saturating_add(length);
                            self.frames.push_back(frame);
                            if self.read > self.limit {
                                break true;
                            }
                        }
                        // Trailers count against the limit too (their names and values), so
                        // that a body of endless trailers frames cannot grow the read.
                        None => {
                            let length = frame.trailers_ref().map_or(0, trailers_length);
                            self.read = self.read.saturating_add(length.max(1));
                            self.frames.push_back(frame);
                            if self.read > self.limit {
                                break true;
                            }
                        }
                    }
                }
            }
        };
        let (Some(head), Some(rest)) = (self.head.take(), self.body.take()) else {
            panic!("a read polled after it ended");
        };
        let frames = std::mem::take(&mut self.frames);
        let body = match over {
            true => ResponseBody::prefixed(frames, rest),
            false => ResponseBody::ready(frames),
        };
        Poll::Ready(Ok(Response::from_parts(head, body)))
    }
}

/// What a trailers frame holds, for the limit: its names and values.
fn trailers_length(trailers: &http::HeaderMap) -> usize {
    trailers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}
