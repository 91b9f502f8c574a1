//! [`FirstByteLayer`]: holds a 2xx response until its body's first frame, so a stream that fails
//! before the caller has seen anything can still be retried.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Buf;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::BoxError;

/// Wraps services in [`FirstByte`].
///
/// A stream that breaks before its first byte is retried like a transport failure:
///
/// ```
/// use std::convert::Infallible;
/// use std::io;
/// use std::pin::Pin;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use std::task::{Context, Poll};
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body::{Body, Frame};
/// use http_body_util::{BodyExt, Either, Full};
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
/// use tower_http_retry::body::FirstByteLayer;
/// use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};
///
/// /// A response body whose connection is reset before its first byte.
/// struct Reset;
///
/// impl Body for Reset {
///     type Data = Bytes;
///     type Error = io::Error;
///
///     fn poll_frame(
///         self: Pin<&mut Self>,
///         _: &mut Context<'_>,
///     ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
///         Poll::Ready(Some(Err(io::ErrorKind::ConnectionReset.into())))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// // The first stream breaks at once; the second arrives whole.
/// let broke = Arc::new(AtomicBool::new(false));
/// let upstream = service_fn(move |_: Request<String>| {
///     let body = match broke.swap(true, Ordering::SeqCst) {
///         false => Either::Left(Reset),
///         true => Either::Right(Full::new(Bytes::from_static(b"audio"))),
///     };
///     async move { Ok::<_, Infallible>(Response::new(body)) }
/// });
/// let client = ServiceBuilder::new()
///     .layer(RetryLayer::new(RetryPolicy::default()))
///     .layer(FirstByteLayer::new())
///     .service(upstream);
///
/// let request = Request::get("http://tts.example/stream")
///     .body(String::new())
///     .unwrap();
/// let response = client.oneshot(request).await.unwrap();
/// assert_eq!(RetryHistory::resend_count(response.extensions()), 1);
/// let audio = response.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(audio, "audio");
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct FirstByteLayer {
    _private: (),
}

impl FirstByteLayer {
    /// A layer that holds 2xx responses until their first body frame.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, Response, StatusCode};
    /// use http_body_util::{BodyExt, Full};
    /// use tower::{service_fn, Layer, ServiceExt};
    /// use tower_http_retry::body::FirstByteLayer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let upstream = service_fn(|request: Request<()>| async move {
    ///     let status = match request.uri().path() {
    ///         "/busy" => StatusCode::SERVICE_UNAVAILABLE,
    ///         _ => StatusCode::OK,
    ///     };
    ///     let body = Full::new(Bytes::from_static(b"body"));
    ///     Ok::<_, Infallible>(Response::builder().status(status).body(body).unwrap())
    /// });
    /// let service = FirstByteLayer::new().layer(upstream);
    ///
    /// // A 2xx is held until its first frame, any other status is not; both arrive whole.
    /// for path in ["/items", "/busy"] {
    ///     let request = Request::get(path).body(()).unwrap();
    ///     let response = service.clone().oneshot(request).await.unwrap();
    ///     let body = response.into_body().collect().await.unwrap().to_bytes();
    ///     assert_eq!(body, "body");
    /// }
    /// # }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for FirstByteLayer {
    type Service = FirstByte<S>;

    fn layer(&self, inner: S) -> FirstByte<S> {
        FirstByte { inner }
    }
}

/// Holds 2xx responses of `S` until their first body frame; a body that fails first becomes an error.
///
/// ```
/// use std::convert::Infallible;
/// use std::io;
/// use http::{Request, Response};
/// use tower::{service_fn, Layer, ServiceExt};
/// use tower_http_retry::classify::ErrorKind;
/// use tower_http_retry::body::FirstByteLayer;
///
/// /// A response body whose connection is reset before its first byte.
/// struct Reset;
/// # impl http_body::Body for Reset {
/// #     type Data = bytes::Bytes;
/// #     type Error = io::Error;
/// #     fn poll_frame(
/// #         self: std::pin::Pin<&mut Self>,
/// #         _: &mut std::task::Context<'_>,
/// #     ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, io::Error>>> {
/// #         std::task::Poll::Ready(Some(Err(io::ErrorKind::ConnectionReset.into())))
/// #     }
/// # }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let upstream = service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(Reset)) });
/// let service = FirstByteLayer::new().layer(upstream);
/// let error = service.oneshot(Request::new(())).await.unwrap_err();
/// // An error of the call, classified by what broke the body.
/// assert_eq!(ErrorKind::of(&*error), ErrorKind::Reset);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct FirstByte<S> {
    inner: S,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for FirstByte<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ResB: Body,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<FirstByteBody<ResB>>;
    type Error = BoxError;
    type Future = FirstByteFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        FirstByteFuture {
            state: State::Head {
                future: self.inner.call(request),
            },
        }
    }
}

/// Empty data frames skipped in one poll before the future yields.
const EMPTY_FRAMES_PER_POLL: u32 = 64;

pin_project! {
    /// The future of [`FirstByte`].
    pub struct FirstByteFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Head { #[pin] future: F },
        // Boxed so the body can move into the response once its first frame is in.
        Body { head: Option<http::response::Parts>, body: Option<Pin<Box<B>>> },
    }
}

impl<F, B, E> Future for FirstByteFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<FirstByteBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Head { future } => {
                    let response = ready!(future.poll(cx)).map_err(Into::into)?;
                    let (head, body) = response.into_parts();
                    if !head.status.is_success() || body.is_end_stream() {
                        let body = FirstByteBody::new(None, Box::pin(body));
                        return Poll::Ready(Ok(Response::from_parts(head, body)));
                    }
                    this.state.set(State::Body {
                        head: Some(head),
                        body: Some(Box::pin(body)),
                    });
                }
                StateProj::Body { head, body } => {
                    let Some(pinned) = body.as_mut() else {
                        panic!("FirstByteFuture polled after completion");
                    };
                    let mut skipped = 0;
                    let first = loop {
                        match ready!(pinned.as_mut().poll_frame(cx)) {
                            // An empty data frame (h2 and hyper pass them through) is no first
                            // byte: skip it, a bounded number per poll so an endless stream of them
                            // cannot hold the thread.
                            Some(Ok(frame))
                                if frame.data_ref().is_some_and(|d| !d.has_remaining()) =>
                            {
                                skipped += 1;
                                if skipped >= EMPTY_FRAMES_PER_POLL {
                                    cx.waker().wake_by_ref();
                                    return Poll::Pending;
                                }
                            }
                            Some(Ok(frame)) => break Some(frame),
                            None => break None,
                            Some(Err(error)) => {
                                *body = None;
                                let error = BodyFailedBeforeFirstByte(error.into());
                                return Poll::Ready(Err(Box::new(error)));
                            }
                        }
                    };
                    let (Some(head), Some(rest)) = (head.take(), body.take()) else {
                        panic!("FirstByteFuture polled after completion");
                    };
                    return Poll::Ready(Ok(Response::from_parts(
                        head,
                        FirstByteBody::new(first, rest),
                    )));
                }
            }
        }
    }
}

/// A response body whose first frame was read ahead: it yields that frame, then the rest.
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body::Body;
/// use http_body_util::{BodyExt, Full};
/// use tower::{service_fn, Layer, ServiceExt};
/// use tower_http_retry::body::FirstByteLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let upstream = service_fn(|_: Request<()>| async {
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
/// });
/// let service = FirstByteLayer::new().layer(upstream);
/// let response = service.oneshot(Request::new(())).await.unwrap();
/// let body = response.into_body();
/// // The frame read ahead still counts.
/// assert_eq!(body.size_hint().exact(), Some(5));
/// assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
/// # }
/// ```
pub struct FirstByteBody<B: Body> {
    first: Option<Frame<B::Data>>,
    rest: Pin<Box<B>>,
}

impl<B: Body> FirstByteBody<B> {
    fn new(first: Option<Frame<B::Data>>, rest: Pin<Box<B>>) -> Self {
        Self { first, rest }
    }
}

// The body behind is boxed and the read-ahead frame is only ever moved, never pinned.
impl<B: Body> Unpin for FirstByteBody<B> {}

impl<B: Body> fmt::Debug for FirstByteBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FirstByteBody")
            .field("first_pending", &self.first.is_some())
            .finish_non_exhaustive()
    }
}

impl<B: Body> Body for FirstByteBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        self.rest.as_mut().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.size_hint();
        let first = self
            .first
            .as_ref()
            .and_then(Frame::data_ref)
            .map_or(0, |data| data.remaining() as u64);
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(first));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(first));
        }
        hint
    }
}

/// The error of a call whose 2xx response body failed before its first frame.
///
/// Its source is the body's error, so [`ErrorKind::of`](crate::classify::ErrorKind::of) finds the
/// transport failure behind it (a reset, an incomplete message) and the retry layer classifies it.
///
/// ```
/// use std::convert::Infallible;
/// use std::error::Error;
/// use std::io;
/// use http::{Request, Response};
/// use tower::{service_fn, Layer, ServiceExt};
/// use tower_http_retry::body::{BodyFailedBeforeFirstByte, FirstByteLayer};
///
/// /// A response body whose connection is reset before its first byte.
/// struct Reset;
/// # impl http_body::Body for Reset {
/// #     type Data = bytes::Bytes;
/// #     type Error = io::Error;
/// #     fn poll_frame(
/// #         self: std::pin::Pin<&mut Self>,
/// #         _: &mut std::task::Context<'_>,
/// #     ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, io::Error>>> {
/// #         std::task::Poll::Ready(Some(Err(io::ErrorKind::ConnectionReset.into())))
/// #     }
/// # }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let upstream = service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(Reset)) });
/// let service = FirstByteLayer::new().layer(upstream);
/// let error = service.oneshot(Request::new(())).await.unwrap_err();
///
/// let failed = error.downcast_ref::<BodyFailedBeforeFirstByte>().unwrap();
/// let cause = failed
///     .source()
///     .and_then(|e| e.downcast_ref::<io::Error>())
///     .unwrap();
/// assert_eq!(cause.kind(), io::ErrorKind::ConnectionReset);
/// # }
/// ```
#[derive(Debug)]
pub struct BodyFailedBeforeFirstByte(BoxError);

impl fmt::Display for BodyFailedBeforeFirstByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the response body failed before its first byte")
    }
}

impl StdError for BodyFailedBeforeFirstByte {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use std::convert::Infallible;
    use tower::{service_fn, ServiceExt};

    fn answering(
        status: u16,
        body: &'static str,
    ) -> impl Service<
        Request<()>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<Full<Bytes>>, Infallible>>,
    > + Clone {
        service_fn(move |_: Request<()>| async move {
            let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            Ok(response)
        })
    }

    #[tokio::test]
    async fn the_read_ahead_frame_keeps_the_size_hint_exact() {
        let service = FirstByteLayer::new().layer(answering(200, "hello"));
        let response = service.oneshot(Request::new(())).await.unwrap();
        let body = response.into_body();
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
    }

    #[tokio::test]
    async fn other_statuses_and_empty_bodies_pass_through() {
        let service = FirstByteLayer::new().layer(answering(503, "busy"));
        let response = service.oneshot(Request::new(())).await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(
            response.into_body().collect().await.unwrap().to_bytes(),
            "busy"
        );

        let service = FirstByteLayer::new().layer(answering(204, ""));
        let response = service.oneshot(Request::new(())).await.unwrap();
        assert!(response.body().is_end_stream());
    }
}
