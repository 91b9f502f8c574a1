//! [`ResponseBody`]: the body of every response [`Retry`](crate::Retry) returns.

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::response::Parts;
use http::{HeaderMap, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::BoxError;

pin_project! {
    /// The body of a response returned by [`Retry`](crate::Retry): the inner service's body as it
    /// came, or, when the policy [buffers responses](crate::RetryPolicy::buffer_responses), what
    /// the layer read of it.
    ///
    /// It has three shapes, which behave the same to a reader:
    ///
    /// - the inner body, untouched: the only shape when buffering is off (the default). Every
    ///   call of it goes straight to the inner body.
    /// - the whole body, read within the limit: its frames as they arrived (trailers included),
    ///   ready at once; [`size_hint`](Body::size_hint) is exact and
    ///   [`is_end_stream`](Body::is_end_stream) true once they are taken.
    /// - a body longer than the limit: the frames read so far, then the rest of the inner body as
    ///   it streams. Nothing is lost; a failure in the rest is the caller's, not retried.
    ///
    /// Frames are kept as they were received, so the data type is the inner body's own (`Bytes`
    /// for hyper, reqwest and tonic) and no bound beyond [`Body`] is needed.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, Response};
    /// use http_body::Body;
    /// use http_body_util::{BodyExt, Full};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::body::ResponseBody;
    /// use tower_http_retry::{Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{\"id\": 7}"))))
    /// });
    /// let client = Retry::new(server, RetryPolicy::default().buffer_responses(64 * 1024));
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    /// let body: ResponseBody<Full<Bytes>> = response.into_body();
    /// // Read already: its size is known, and it is ready at once.
    /// assert_eq!(body.size_hint().exact(), Some(9));
    /// assert_eq!(body.collect().await.unwrap().to_bytes(), "{\"id\": 7}");
    /// # }
    /// ```
    pub struct ResponseBody<B: Body> {
        #[pin]
        shape: Shape<B>,
    }
}

pin_project! {
    #[project = ShapeProj]
    enum Shape<B: Body> {
        // The inner body, untouched.
        Inner { #[pin] body: B },
        // What the layer read: boxed, so that the common shape stays as small as the inner body.
        Read { read: Pin<Box<Buffered<B>>> },
    }
}

pin_project! {
    /// A response body as the layer reads it within the attempt, then hands it over: the frames
    /// read, as they arrived (`left` data bytes of them not taken yet), and the inner body while it
    /// may have more (for a body longer than the limit, the rest the caller reads as it streams).
    ///
    /// One allocation serves the read and the caller: the read fills it, and the response's body
    /// takes it as it is (the inner body, pinned in it, never moves).
    pub(crate) struct Buffered<B: Body> {
        frames: Frames<B::Data>,
        left: u64,
        // The response's head while the body is read, here so that the read's state stays small;
        // taken when the response is handed over.
        head: Option<Parts>,
        #[pin]
        rest: Rest<B>,
    }
}

pin_project! {
    #[project = RestProj]
    enum Rest<B> {
        // The inner body, which may have more frames.
        Open { #[pin] body: B },
        // Read to its end: dropped.
        Ended,
    }
}

/// What polling a body for its next frame gives.
pub(crate) type NextFrame<B> = Poll<Option<Result<Frame<<B as Body>::Data>, <B as Body>::Error>>>;

/// Frames in the order they arrived. The first is kept inline: a body read whole often comes in
/// one frame (hyper hands over what one socket read brought), and then no queue is allocated.
struct Frames<D> {
    first: Option<Frame<D>>,
    more: VecDeque<Frame<D>>,
}

impl<D> Frames<D> {
    fn new() -> Self {
        Self {
            first: None,
            more: VecDeque::new(),
        }
    }

    fn push(&mut self, frame: Frame<D>) {
        match self.first.is_none() && self.more.is_empty() {
            true => self.first = Some(frame),
            false => self.more.push_back(frame),
        }
    }

    fn pop(&mut self) -> Option<Frame<D>> {
        self.first.take().or_else(|| self.more.pop_front())
    }

    fn is_empty(&self) -> bool {
        self.first.is_none() && self.more.is_empty()
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    fn iter(&self) -> impl Iterator<Item = &Frame<D>> {
        self.first.iter().chain(&self.more)
    }
}

impl<B: Body> Buffered<B> {
    /// Starts reading `response`'s body: nothing read yet.
    pub(crate) fn new(response: Response<B>) -> Pin<Box<Self>> {
        let (head, body) = response.into_parts();
        Box::pin(Self {
            frames: Frames::new(),
            left: 0,
            head: Some(head),
            rest: Rest::Open { body },
        })
    }

    /// The inner body's next frame; `None` once it ended.
    #[inline]
    pub(crate) fn poll_inner(self: Pin<&mut Self>, cx: &mut Context<'_>) -> NextFrame<B> {
        match self.project().rest.project() {
            RestProj::Open { body } => body.poll_frame(cx),
            RestProj::Ended => Poll::Ready(None),
        }
    }

    /// Keeps `frame`, read from the inner body, after those kept before.
    #[inline]
    pub(crate) fn keep(self: Pin<&mut Self>, frame: Frame<B::Data>) {
        let this = self.project();
        if let Some(data) = frame.data_ref() {
            *this.left = this.left.saturating_add(data.remaining() as u64);
        }
        this.frames.push(frame);
    }

    /// The inner body ended: dropped now.
    pub(crate) fn end(self: Pin<&mut Self>) {
        self.project().rest.set(Rest::Ended);
    }

    /// The response, its body what was read (ready at once) and, unless it ended, the rest of the
    /// inner body; `None` when it was handed over already.
    pub(crate) fn into_response(mut self: Pin<Box<Self>>) -> Option<Response<ResponseBody<B>>> {
        let head = self.as_mut().project().head.take()?;
        let body = ResponseBody {
            shape: Shape::Read { read: self },
        };
        Some(Response::from_parts(head, body))
    }

    /// Whether the rest of the inner body is still to come.
    fn is_open(&self) -> bool {
        matches!(self.rest, Rest::Open { .. })
    }
}

impl<B: Body> ResponseBody<B> {
    /// The inner body, passed through untouched.
    ///
    /// ```
    /// use http_body::Body;
    /// use tower_http_retry::body::ResponseBody;
    ///
    /// let body = ResponseBody::new(String::from("ok"));
    /// assert_eq!(body.size_hint().exact(), Some(2));
    /// assert_eq!(body.get_ref().map(String::as_str), Some("ok"));
    /// ```
    #[inline]
    pub fn new(body: B) -> Self {
        Self {
            shape: Shape::Inner { body },
        }
    }

    /// The inner body when it is passed through untouched; `None` when the layer read from it.
    ///
    /// ```
    /// use tower_http_retry::body::ResponseBody;
    ///
    /// let body = ResponseBody::new(String::from("ok"));
    /// assert_eq!(body.get_ref().unwrap(), "ok");
    /// ```
    pub fn get_ref(&self) -> Option<&B> {
        match &self.shape {
            Shape::Inner { body } => Some(body),
            _ => None,
        }
    }

    /// The inner body when it is passed through untouched; else this body back.
    ///
    /// ```
    /// use tower_http_retry::body::ResponseBody;
    ///
    /// let body = ResponseBody::new(String::from("ok"));
    /// assert_eq!(body.into_inner().unwrap(), "ok");
    /// ```
    pub fn into_inner(self) -> Result<B, Self> {
        match self.shape {
            Shape::Inner { body } => Ok(body),
            shape => Err(Self { shape }),
        }
    }

    /// Whether the body was longer than the limit: passed on as it streams.
    pub(crate) fn is_streamed(&self) -> bool {
        matches!(&self.shape, Shape::Read { read } if read.is_open())
    }

    /// The trailers of a body read whole, if it had any.
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    pub(crate) fn trailers(&self) -> Option<&HeaderMap> {
        match &self.shape {
            Shape::Read { read } if !read.is_open() => {
                read.frames.iter().find_map(Frame::trailers_ref)
            }
            _ => None,
        }
    }

    /// The data of a body read whole, in one piece (a copy), for a classifier to read.
    pub(crate) fn contiguous(&self) -> Option<Bytes> {
        let Shape::Read { read } = &self.shape else {
            return None;
        };
        if read.is_open() {
            return None;
        }
        let mut bytes = BytesMut::with_capacity(usize::try_from(read.left).unwrap_or(0));
        for data in read.frames.iter().filter_map(Frame::data_ref) {
            copy_into(data, &mut bytes);
        }
        Some(bytes.freeze())
    }
}

/// Copies every byte of `data` into `into`, without consuming it. A `Buf` shows its first chunk
/// alone; one in several chunks (a `Chain`) shows the others through `chunks_vectored`.
fn copy_into<D: Buf>(data: &D, into: &mut BytesMut) {
    if data.chunk().len() == data.remaining() {
        into.extend_from_slice(data.chunk());
        return;
    }
    let mut slices = [std::io::IoSlice::new(&[]); 64];
    let filled = data.chunks_vectored(&mut slices);
    for slice in &slices[..filled] {
        into.extend_from_slice(slice);
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        match self.project().shape.project() {
            ShapeProj::Inner { body } => body.poll_frame(cx),
            ShapeProj::Read { read } => {
                let this = read.as_mut().project();
                match take(this.frames, this.left) {
                    Some(frame) => Poll::Ready(Some(Ok(frame))),
                    None => match this.rest.project() {
                        RestProj::Open { body } => body.poll_frame(cx),
                        RestProj::Ended => Poll::Ready(None),
                    },
                }
            }
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match &self.shape {
            Shape::Inner { body } => body.is_end_stream(),
            Shape::Read { read } => {
                read.frames.is_empty()
                    && match &read.rest {
                        Rest::Open { body } => body.is_end_stream(),
                        Rest::Ended => true,
                    }
            }
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        match &self.shape {
            Shape::Inner { body } => body.size_hint(),
            Shape::Read { read } => match &read.rest {
                Rest::Ended => SizeHint::with_exact(read.left),
                Rest::Open { body } => {
                    let rest = body.size_hint();
                    let mut hint = SizeHint::new();
                    hint.set_lower(rest.lower().saturating_add(read.left));
                    if let Some(upper) = rest.upper() {
                        hint.set_upper(upper.saturating_add(read.left));
                    }
                    hint
                }
            },
        }
    }
}

/// The next frame read ahead, counted off `left`.
fn take<D: Buf>(frames: &mut Frames<D>, left: &mut u64) -> Option<Frame<D>> {
    let frame = frames.pop()?;
    if let Some(data) = frame.data_ref() {
        *left = left.saturating_sub(data.remaining() as u64);
    }
    Some(frame)
}

/// The inner body's default, passed through (an empty body, for the answers a layer makes itself).
impl<B: Body + Default> Default for ResponseBody<B> {
    fn default() -> Self {
        Self::new(B::default())
    }
}

impl<B: Body + fmt::Debug> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.shape {
            Shape::Inner { body } => f.debug_tuple("ResponseBody").field(body).finish(),
            Shape::Read { read } => f
                .debug_struct("ResponseBody")
                .field("frames", &read.frames.len())
                .field("bytes", &read.left)
                .field(
                    "rest",
                    &match &read.rest {
                        Rest::Open { body } => Some(body),
                        Rest::Ended => None,
                    },
                )
                .finish(),
        }
    }
}

/// The response body failed while the layer read it ([`buffer_responses`]): an attempt that
/// failed after its request was sent, classified by its cause (a reset, a connection closed too
/// early), or as an incomplete message when the cause says nothing the layer recognises.
///
/// [`buffer_responses`]: crate::RetryPolicy::buffer_responses
///
/// ```
/// use std::error::Error;
/// use std::io;
/// use tower_http_retry::body::BodyReadFailed;
/// use tower_http_retry::classify::ErrorKind;
///
/// let reset = BodyReadFailed::new(io::Error::from(io::ErrorKind::ConnectionReset));
/// assert_eq!(ErrorKind::of(&reset), ErrorKind::Reset);
/// assert!(reset.source().is_some());
/// let unknown = BodyReadFailed::new("a body of its own that broke");
/// assert_eq!(ErrorKind::of(&unknown), ErrorKind::IncompleteMessage);
/// ```
#[derive(Debug)]
pub struct BodyReadFailed(BoxError);

impl BodyReadFailed {
    /// The failure of a response body, `cause`.
    pub fn new(cause: impl Into<BoxError>) -> Self {
        Self(cause.into())
    }
}

impl fmt::Display for BodyReadFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the response body failed while it was read")
    }
}

impl StdError for BodyReadFailed {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    fn frames(parts: &[&'static str]) -> Vec<Frame<Bytes>> {
        parts
            .iter()
            .map(|part| Frame::data(Bytes::from_static(part.as_bytes())))
            .collect()
    }

    /// What a read hands over: `read` kept, then `rest` when the read stopped at the limit.
    fn handed_over<B: Body>(read: Vec<Frame<B::Data>>, rest: B, over: bool) -> ResponseBody<B> {
        let mut buffered = Buffered::new(Response::new(rest));
        for frame in read {
            buffered.as_mut().keep(frame);
        }
        if !over {
            buffered.as_mut().end();
        }
        buffered.into_response().unwrap().into_body()
    }

    #[tokio::test]
    async fn the_ready_shape_is_exact_and_keeps_the_trailers() {
        let mut read = frames(&["hello, ", "world"]);
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "14".parse().unwrap());
        read.push(Frame::trailers(trailers));
        let body = handed_over(read, Full::<Bytes>::default(), false);
        assert_eq!(body.size_hint().exact(), Some(12));
        assert!(!body.is_end_stream());
        assert_eq!(body.contiguous().unwrap(), "hello, world");
        assert_eq!(body.trailers().unwrap()["grpc-status"], "14");
        let collected = body.collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "14");
        assert_eq!(collected.to_bytes(), "hello, world");

        let empty = handed_over(Vec::new(), Full::<Bytes>::default(), false);
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
    }

    #[tokio::test]
    async fn the_prefix_comes_first_then_the_rest() {
        let rest = Full::new(Bytes::from_static(b" and the rest"));
        let body = handed_over(frames(&["the prefix"]), rest, true);
        assert!(body.is_streamed());
        assert_eq!(body.size_hint().exact(), Some(23));
        assert_eq!(body.contiguous(), None);
        assert_eq!(
            body.collect().await.unwrap().to_bytes(),
            "the prefix and the rest"
        );
    }

    #[tokio::test]
    async fn frames_come_out_in_the_order_they_were_kept() {
        let one = handed_over(frames(&["alone"]), Full::<Bytes>::default(), false);
        assert_eq!(
            format!("{one:?}"),
            "ResponseBody { frames: 1, bytes: 5, rest: None }"
        );
        assert_eq!(one.collect().await.unwrap().to_bytes(), "alone");
        let many = handed_over(
            frames(&["a", "b", "c", "d", "e", "f"]),
            Full::<Bytes>::default(),
            false,
        );
        assert_eq!(many.size_hint().exact(), Some(6));
        assert_eq!(many.contiguous().unwrap(), "abcdef");
        assert_eq!(many.collect().await.unwrap().to_bytes(), "abcdef");
    }

    #[test]
    fn a_buf_in_many_chunks_is_copied_whole() {
        let data = Bytes::from_static(b"abc").chain(Bytes::from_static(b"def"));
        let mut copy = BytesMut::new();
        copy_into(&data, &mut copy);
        assert_eq!(copy, "abcdef");
        assert_eq!(data.remaining(), 6, "nothing was consumed");
    }
}
