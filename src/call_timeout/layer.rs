//! [`CallTimeoutLayer`]: wraps a service in a [`CallTimeout`].

use std::time::Duration;

use tower_layer::Layer;

use super::CallTimeout;

/// Bounds each whole call, from the request to the last byte of the response body, by one timeout
/// ("timeout covers the full request lifecycle: connect + read + write"). Opt in by putting it
/// outside a [`RetryLayer`](crate::RetryLayer).
///
/// Each call's deadline is the shorter of the layer's timeout and the request's own
/// [`CallSettings::deadline`](crate::CallSettings::deadline). The layer hands that deadline to the
/// retry layer inside it (as the request's `CallSettings`), which bounds the attempts, the waits and
/// each response head by it and returns its deadline [`Error`](crate::Error); and it wraps the
/// response body in a [`CallTimeoutBody`](crate::body::CallTimeoutBody), which fails with
/// [`CallTimedOut`](crate::body::CallTimedOut) when read past it. Without it, the retry layer's
/// deadline ends when the response head arrives: reading the body is the caller's, and unbounded.
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
        CallTimeout::new(inner, self.timeout)
    }
}
