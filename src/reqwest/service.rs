//! [`ReqwestService`]: `reqwest::Client` as a `Service<http::Request<B>>`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower_service::Service;

use crate::BoxError;

/// A [`reqwest::Client`] that takes `http::Request<B>` (any body: `Full<Bytes>`, `String`, a
/// [`ReplayBody`](crate::body::ReplayBody), a `reqwest::Body`) and answers `http::Response<reqwest::Body>`,
/// so that tower's HTTP layers, [`RetryLayer`](crate::RetryLayer) first, can wrap it. Its error is
/// `reqwest::Error`, which [`ErrorKind::of`](crate::classify::ErrorKind::of) classifies by type.
///
/// Cloning it clones the client, which shares its connection pool.
///
/// [`reqwest::Client`]: https://docs.rs/reqwest/0.13/reqwest/struct.Client.html
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_http_retry::reqwest::ReqwestService;
/// use tower_http_retry::{RetryLayer, RetryPolicy};
///
/// # async fn run() -> Result<(), tower_http_retry::BoxError> {
/// let reqwest = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
/// let client = ServiceBuilder::new()
///     .layer(RetryLayer::new(RetryPolicy::default()))
///     .service(ReqwestService::new(reqwest));
///
/// let request = http::Request::get("http://api.example/v1/items").body(Full::new(Bytes::new()))?;
/// let response = client.oneshot(request).await?;
/// println!("{}", response.status());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct ReqwestService {
    client: ::reqwest::Client,
}

impl ReqwestService {
    /// Wraps `client`.
    ///
    /// ```
    /// use tower_http_retry::reqwest::ReqwestService;
    ///
    /// let service = ReqwestService::new(reqwest::Client::new());
    /// # let _ = service;
    /// ```
    pub fn new(client: ::reqwest::Client) -> Self {
        Self { client }
    }

    /// The client.
    ///
    /// ```
    /// use tower_http_retry::reqwest::ReqwestService;
    ///
    /// let service = ReqwestService::from(reqwest::Client::new());
    /// let client: &reqwest::Client = service.client();
    /// # let _ = client;
    /// ```
    pub fn client(&self) -> &::reqwest::Client {
        &self.client
    }
}

impl From<::reqwest::Client> for ReqwestService {
    fn from(client: ::reqwest::Client) -> Self {
        Self::new(client)
    }
}

impl<B> Service<Request<B>> for ReqwestService
where
    B: http_body::Body + Send + Sync + 'static,
    B::Data: Into<Bytes>,
    B::Error: Into<BoxError>,
{
    type Response = Response<::reqwest::Body>;
    type Error = ::reqwest::Error;
    type Future = ReqwestFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // reqwest's client is always ready: its pool waits inside the call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ReqwestFuture {
        let request = ::reqwest::Request::try_from(request.map(::reqwest::Body::wrap));
        let client = self.client.clone();
        ReqwestFuture {
            inner: Box::pin(async move {
                let response = client.execute(request?).await?;
                Ok(response.into())
            }),
        }
    }
}

type Inner =
    Pin<Box<dyn Future<Output = Result<Response<::reqwest::Body>, ::reqwest::Error>> + Send>>;

/// The response future of [`ReqwestService`].
///
/// ```
/// use http::Request;
/// use tower::Service;
/// use tower_http_retry::reqwest::{ReqwestFuture, ReqwestService};
///
/// let mut service = ReqwestService::new(reqwest::Client::new());
/// // No request leaves before the future is polled; this one never is.
/// let future: ReqwestFuture = service.call(Request::new(String::new()));
/// # let _ = future;
/// ```
pub struct ReqwestFuture {
    inner: Inner,
}

impl Future for ReqwestFuture {
    type Output = Result<Response<::reqwest::Body>, ::reqwest::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ReqwestFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestFuture").finish_non_exhaustive()
    }
}
