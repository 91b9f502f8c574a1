//! [`CheckService`]: the inner service as a check before a retry gets it, its requests recorded.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::classify::ErrorKind;
use crate::report::history::AttemptOutcome;
use crate::BoxError;

/// The outcomes of a check's requests, shared by the clones of its service.
/// What a check's service shares with the call: the outcomes of its requests, and whether it has
/// sent one (the call then lets go of the response it kept, whose unread body may hold the
/// connection or stream that request needs).
#[derive(Clone, Debug, Default)]
pub(crate) struct CheckLog(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    requests: Mutex<Vec<AttemptOutcome>>,
    sent: AtomicBool,
}

impl CheckLog {
    /// The outcomes of the check's requests, taken.
    pub(crate) fn take(&self) -> Vec<AttemptOutcome> {
        std::mem::take(&mut *self.0.requests.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether the check has sent a request of its own.
    pub(crate) fn has_sent(&self) -> bool {
        self.0.sent.load(Ordering::Acquire)
    }

    fn push(&self, outcome: AttemptOutcome) {
        self.0
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(outcome);
    }
}

/// A clone of the inner service, handed to a [check](crate::check) before a retry: it sends requests
/// as the inner service does and records each one's status or error kind in the call's
/// [`RetryHistory`](crate::RetryHistory) ([`checks`](crate::RetryHistory::checks)). Its requests are
/// not attempts of the call.
///
/// ```
/// use tower::{Service, ServiceExt};
/// use tower_http_retry::check::CheckService;
/// use tower_http_retry::BoxError;
///
/// async fn list<S>(service: CheckService<S>) -> Result<http::StatusCode, BoxError>
/// where
///     CheckService<S>: Service<http::Request<String>, Response = http::Response<String>, Error = BoxError>,
/// {
///     let response = service.oneshot(http::Request::new(String::new())).await?;
///     Ok(response.status())
/// }
/// # let _ = list::<tower::util::BoxCloneService<http::Request<String>, http::Response<String>, BoxError>>;
/// ```
#[derive(Clone, Debug)]
pub struct CheckService<S> {
    inner: S,
    log: CheckLog,
}

impl<S> CheckService<S> {
    pub(crate) fn new(inner: S, log: CheckLog) -> Self {
        Self { inner, log }
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for CheckService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResB>;
    type Error = BoxError;
    type Future = CheckServiceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        self.log.0.sent.store(true, Ordering::Release);
        CheckServiceFuture {
            inner: self.inner.call(request),
            log: self.log.clone(),
        }
    }
}

pin_project! {
    /// The future of a [`CheckService`] call.
    ///
    /// ```
    /// use tower_http_retry::check::CheckServiceFuture;
    ///
    /// fn named<F>(_: &CheckServiceFuture<F>) {}
    /// # let _ = named::<std::future::Ready<()>>;
    /// ```
    #[derive(Debug)]
    pub struct CheckServiceFuture<F> {
        #[pin]
        inner: F,
        log: CheckLog,
    }
}

impl<F, ResB, E> Future for CheckServiceFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<ResB>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx)).map_err(Into::into);
        let outcome = match &result {
            Ok(response) => AttemptOutcome::Status(response.status()),
            Err(error) => AttemptOutcome::Error(ErrorKind::of(&**error)),
        };
        this.log.push(outcome);
        Poll::Ready(result)
    }
}
