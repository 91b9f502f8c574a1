//! [`CallTimeout`]: gives each call its deadline, hands it to the retry layer inside, and bounds the
//! response body by it.

use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tokio::time::Instant;
use tower_service::Service;

use super::CallTimeoutFuture;
use crate::body::CallTimeoutBody;
use crate::policy::CallSettings;

/// The service made by [`CallTimeoutLayer`](crate::CallTimeoutLayer).
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

impl<S> CallTimeout<S> {
    pub(super) fn new(inner: S, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
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
        CallTimeoutFuture::new(
            self.inner.call(request),
            deadline_after(Instant::now(), timeout),
        )
    }
}

/// `timeout` after `now`, or, when that is past what the clock can represent, a deadline 30 years
/// away (tokio's own "far future").
fn deadline_after(now: Instant, timeout: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 86_400);
    now.checked_add(timeout.min(FAR)).unwrap_or(now)
}
