//! [`ReplayBodyLayer`]: wraps every request's body in a [`ReplayBody`].

use std::task::{Context, Poll};

use http::Request;
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::body::{ReplayBody, DEFAULT_REPLAY_LIMIT};

/// Wraps every request's body in a [`ReplayBody`], so a [`RetryLayer`](crate::RetryLayer) inside it can
/// replay bodies that are not `Clone`. Put it right outside the retry layer.
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_http_retry::body::{ReplayBody, ReplayBodyLayer};
/// use tower_http_retry::{RetryLayer, RetryPolicy};
/// # type Upload = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, std::convert::Infallible>;
/// # let client = tower::service_fn(|_: http::Request<ReplayBody<Upload>>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// # });
///
/// let service = ServiceBuilder::new()
///     .layer(ReplayBodyLayer::new().limit(256 * 1024))
///     .layer(RetryLayer::new(RetryPolicy::default()))
///     .service(client);
/// # fn accepts_uploads<S: tower::Service<http::Request<Upload>>>(_: &S) {}
/// # accepts_uploads(&service);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ReplayBodyLayer {
    limit: u64,
}

impl ReplayBodyLayer {
    /// A layer whose bodies record up to [`64 * 1024`] bytes.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, Response};
    /// use http_body_util::Full;
    /// use tower::{service_fn, Layer, ServiceExt};
    /// use tower_http_retry::body::{ReplayBody, ReplayBodyLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let inner = service_fn(|request: Request<ReplayBody<Full<Bytes>>>| async move {
    ///     Ok::<_, Infallible>(Response::new(request.into_body().limit()))
    /// });
    /// let service = ReplayBodyLayer::new().layer(inner);
    /// let request = Request::new(Full::new(Bytes::new()));
    /// let response = service.oneshot(request).await.unwrap();
    /// assert_eq!(*response.body(), 64 * 1024);
    /// # }
    /// ```
    pub fn new() -> Self {
        Self {
            limit: DEFAULT_REPLAY_LIMIT,
        }
    }

    /// Records up to `bytes` of each request body; a longer body is sent once and not retried.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, Response};
    /// use http_body_util::Full;
    /// use tower::{service_fn, Layer, ServiceExt};
    /// use tower_http_retry::body::ReplayableBody;
    /// use tower_http_retry::body::{ReplayBody, ReplayBodyLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // Reports whether the body it receives could be sent again.
    /// let inner = service_fn(|request: Request<ReplayBody<Full<Bytes>>>| async move {
    ///     Ok::<_, Infallible>(Response::new(request.body().replay().is_ok()))
    /// });
    /// let service = ReplayBodyLayer::new().limit(4).layer(inner);
    /// let replayable = |body: &'static [u8]| {
    ///     let request = Request::new(Full::new(Bytes::from_static(body)));
    ///     service.clone().oneshot(request)
    /// };
    /// assert!(replayable(b"1234").await.unwrap().into_body());
    /// assert!(!replayable(b"12345").await.unwrap().into_body());
    /// # }
    /// ```
    pub fn limit(mut self, bytes: u64) -> Self {
        self.limit = bytes;
        self
    }
}

impl Default for ReplayBodyLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for ReplayBodyLayer {
    type Service = ReplayBodyService<S>;

    fn layer(&self, inner: S) -> ReplayBodyService<S> {
        ReplayBodyService {
            inner,
            limit: self.limit,
        }
    }
}

/// Wraps each request's body in a [`ReplayBody`] and passes the request on. Made by [`ReplayBodyLayer`].
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
/// use tower::{Layer, ServiceExt};
/// use tower_http_retry::body::{ReplayBody, ReplayBodyLayer};
///
/// type Upload = UnsyncBoxBody<Bytes, Infallible>;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let inner = tower::service_fn(|request: http::Request<ReplayBody<Upload>>| async move {
///     Ok::<_, Infallible>(http::Response::new(request.into_body().limit()))
/// });
/// let service = ReplayBodyLayer::new().limit(1 << 20).layer(inner);
/// let upload: Upload = Full::new(Bytes::from_static(b"data")).boxed_unsync();
/// let response = service.oneshot(http::Request::new(upload)).await.unwrap();
/// assert_eq!(*response.body(), 1 << 20, "the body was wrapped with the layer's limit");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ReplayBodyService<S> {
    inner: S,
    limit: u64,
}

impl<S> ReplayBodyService<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for ReplayBodyService<S>
where
    S: Service<Request<ReplayBody<B>>>,
    B: Body,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> S::Future {
        let limit = self.limit;
        self.inner
            .call(request.map(|body| ReplayBody::with_limit(body, limit)))
    }
}
