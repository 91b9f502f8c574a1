//! [`CallTimeoutFuture`]: the inner call's response, its body bounded by the call's deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::body::CallTimeoutBody;

pin_project! {
    /// The future of a [`CallTimeout`](crate::CallTimeout): the inner response, its body bounded by the call's deadline.
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

impl<F> CallTimeoutFuture<F> {
    pub(super) fn new(inner: F, deadline: Instant) -> Self {
        Self { inner, deadline }
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
