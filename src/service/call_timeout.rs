//! [`CallTimeoutLayer`]: one timeout over the whole call, the response body included.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::CallTimeoutBody;
use crate::policy::CallSettings;

/// Bounds each whole call, from the request to the last byte of the response body, by one timeout
/// ("timeout covers the full request lifecycle: connect + read + write"). Opt in by putting it
/// outside a [`RetryLayer`](crate::RetryLayer).
///
/// Each call's deadline is the shorter of the layer's timeout and the request's own
/// [`CallSettings::deadline`]. The layer hands that deadline to the retry layer inside it (as the
/// request's `CallSettings`), which bounds the attempts, the waits and each response head by it and
/// returns its deadline [`Error`](crate::Error); and it wraps the response body in a
/// [`CallTimeoutBody`], which fails with [`CallTimedOut`](crate::body::CallTimedOut) when read past it.
/// Without it, the retry layer's deadline ends when the response head arrives: reading the body
/// is the caller's, and unbounded.
///
/// The cost when used, per call: one clock read, one allocated timer, and the retry layer's copy of
/// its policy with the call's deadline merged in; and one clock read per frame of the response body.
///
/// ```
/// use std::convert::Infallible;
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body::Frame;
/// use http_body_util::BodyExt;
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
/// use tower_http_retry::body::CallTimedOut;
/// use tower_http_retry::{CallTimeoutLayer, RetryLayer, RetryPolicy};
///
/// /// A body whose next frame never comes.
/// struct Endless;
/// impl http_body::Body for Endless {
///     type Data = Bytes;
///     type Error = Infallible;
///     fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
///         Poll::Pending
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let server = service_fn(|_: Request<String>| async { Ok::<_, Infallible>(Response::new(Endless)) });
/// let client = ServiceBuilder::new()
///     .layer(CallTimeoutLayer::new(Duration::from_secs(30)))
///     .layer(RetryLayer::new(RetryPolicy::default()))
///     .service(server);
///
/// let response = client.oneshot(Request::new(String::new())).await.unwrap();
/// let error = response.into_body().collect().await.unwrap_err();
/// assert!(error.is::<CallTimedOut>());
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct CallTimeoutLayer {
    timeout: Duration,
}

impl CallTimeoutLayer {
    /// A layer that gives each call at most `timeout`, its response body included. A timeout too
    /// long to add to the clock (`Duration::MAX`) is a deadline decades away, in effect none.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::CallTimeoutLayer;
    ///
    /// let layer = CallTimeoutLayer::new(Duration::from_secs(30));
    /// # let _ = layer;
    /// ```
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for CallTimeoutLayer {
    type Service = CallTimeout<S>;

    fn layer(&self, inner: S) -> CallTimeout<S> {
        CallTimeout {
            inner,
            timeout: self.timeout,
        }
    }
}

/// The service made by [`CallTimeoutLayer`].
///
/// ```
/// use std::time::Duration;
/// use tower::Layer;
/// use tower_http_retry::{CallTimeout, CallTimeoutLayer, Retry, RetryPolicy};
/// # let client = tower::service_fn(|_: http::Request<String>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// # });
///
/// let service: CallTimeout<Retry<_>> = CallTimeoutLayer::new(Duration::from_secs(30))
///     .layer(Retry::new(client, RetryPolicy::default()));
/// # let _ = service;
/// ```
#[derive(Clone, Debug)]
pub struct CallTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for CallTimeout<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<CallTimeoutBody<ResB>>;
    type Error = S::Error;
    type Future = CallTimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqB>) -> Self::Future {
        let settings = request.extensions_mut().remove::<CallSettings>();
        let settings = settings.unwrap_or_default();
        let timeout = settings
            .deadline_setting()
            .map_or(self.timeout, |own| own.min(self.timeout));
        request.extensions_mut().insert(settings.deadline(timeout));
        CallTimeoutFuture {
            inner: self.inner.call(request),
            deadline: deadline_after(Instant::now(), timeout),
        }
    }
}

/// `timeout` after `now`, or, when that is past what the clock can represent, a deadline 30 years
/// away (tokio's own "far future").
fn deadline_after(now: Instant, timeout: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 86_400);
    now.checked_add(timeout.min(FAR)).unwrap_or(now)
}

pin_project! {
    /// The future of a [`CallTimeout`]: the inner response, its body bounded by the call's deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower::{Layer, Service, ServiceExt};
    /// use tower_http_retry::{CallTimeoutFuture, CallTimeoutLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = tower::service_fn(|_: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// # });
    /// let mut service = CallTimeoutLayer::new(Duration::from_secs(30)).layer(client);
    /// let future: CallTimeoutFuture<_> = service.ready().await.unwrap().call(http::Request::new(String::new()));
    /// assert!(future.await.is_ok());
    /// # }
    /// ```
    pub struct CallTimeoutFuture<F> {
        #[pin]
        inner: F,
        deadline: Instant,
    }
}

impl<F, ResB, E> Future for CallTimeoutFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = Result<Response<CallTimeoutBody<ResB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let deadline = *this.deadline;
        Poll::Ready(Ok(response.map(|body| CallTimeoutBody::new(body, deadline))))
    }
}
