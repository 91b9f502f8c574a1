//! [`Retry`]: the service that retries requests to the one it wraps.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::{ReplayableBody, ResponseBody};
use crate::policy::check::{CheckBeforeRetry, NoCheck};
use crate::policy::retry_policy::RetryPolicy;
use crate::report::history::RetryHistory;
use crate::service::check_service::CheckService;
use crate::service::future::ResponseFuture;
use crate::{BoxError, Error};

/// Retries requests to the inner service `S` by a [`RetryPolicy`]. Made by [`RetryLayer`](crate::RetryLayer).
///
/// Each call keeps a copy of the request head and of its body ([`ReplayableBody`]) for later attempts,
/// and a clone of `S`, which it drives to readiness with `poll_ready` before every retry.
///
/// `Retry<S>` is `Clone`, `Send` and `Sync` whenever `S` is.
///
/// Clones share the policy, and with it the retry budget:
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceExt};
/// use tower_http_retry::budget::RetryBudget;
/// use tower_http_retry::history::StopReason;
/// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let server = service_fn(|_: Request<String>| async {
///     Ok::<_, Infallible>(Response::builder().status(503).body(String::new()).unwrap())
/// });
/// let one_retry = RetryBudget::builder().floor(1).ratio(0.0).build();
/// let client = Retry::new(server, RetryPolicy::default().retry_budget(one_retry));
///
/// let request = || Request::new(String::new());
///
/// // The first call spends the one retry; the second gets none.
/// let first = client.clone().oneshot(request()).await.unwrap();
/// let second = client.clone().oneshot(request()).await.unwrap();
/// assert_eq!(RetryHistory::resend_count(first.extensions()), 1);
/// assert_eq!(RetryHistory::resend_count(second.extensions()), 0);
/// let history = second.extensions().get::<RetryHistory>().unwrap();
/// assert_eq!(history.stop_reason(), StopReason::BudgetExhausted);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Retry<S, C = NoCheck> {
    inner: S,
    policy: Arc<RetryPolicy>,
    check: C,
    /// Names the wrapped service for the throttle, for requests that name no server (a tonic
    /// channel's path-only URIs): each wrapped service is a server of its own. Clones share it.
    origin: u64,
}

/// The next [`Retry::origin`].
fn next_origin() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl<S> Retry<S> {
    /// Wraps `inner` with `policy`.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::{Arc, Mutex};
    /// use http::{Request, Response, StatusCode};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::{Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // Answers 502, then 200.
    /// let statuses = Arc::new(Mutex::new([502u16, 200].into_iter()));
    /// let server = service_fn(move |_: Request<String>| {
    ///     let status = statuses.lock().unwrap().next().unwrap();
    ///     let response = Response::builder().status(status).body(String::new());
    ///     async move { Ok::<_, Infallible>(response.unwrap()) }
    /// });
    ///
    /// let client = Retry::new(server, RetryPolicy::default());
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::OK);
    /// # }
    /// ```
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        Self {
            inner,
            policy: Arc::new(policy),
            check: NoCheck,
            origin: next_origin(),
        }
    }
}

impl<S, C> Retry<S, C> {
    pub(crate) fn from_shared(inner: S, policy: Arc<RetryPolicy>, check: C) -> Self {
        Self {
            inner,
            policy,
            check,
            origin: next_origin(),
        }
    }

    /// Runs `check` before re-sending a request that may have taken effect, instead of never
    /// re-sending it: see [`check`](crate::check).
    ///
    /// ```
    /// use tower_http_retry::check::NoCheck;
    /// use tower_http_retry::{Retry, RetryPolicy};
    /// # let client = tower::service_fn(|_: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// # });
    ///
    /// // Any `CheckBeforeRetry` for this service; `NoCheck` is the default.
    /// let service = Retry::new(client, RetryPolicy::default()).check_before_retry(NoCheck);
    /// # let _ = service;
    /// ```
    pub fn check_before_retry<C2>(self, check: C2) -> Retry<S, C2> {
        Retry {
            inner: self.inner,
            policy: self.policy,
            check,
            origin: self.origin,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The policy in use.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Calls a clone of the service with `request` once it is ready, as
    /// [`tower::ServiceExt::oneshot`](https://docs.rs/tower/0.5/tower/trait.ServiceExt.html#method.oneshot)
    /// does.
    ///
    /// It is here for its bound. It takes `&self`, so where `ServiceExt` is in scope and the request
    /// fits, the compiler picks `ServiceExt::oneshot` (which takes the service by value) and this
    /// method is not used. It is picked when that one does not apply: without `ServiceExt` in scope,
    /// or with a request body that cannot be sent again (axum's `Body`, hyper's `Incoming`, a boxed
    /// stream). The compiler then names the body and the fix, a
    /// [`ReplayBodyLayer`](crate::body::ReplayBodyLayer) right outside the retry layer, where it
    /// would only say that "the method `oneshot` exists but its trait bounds were not satisfied".
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceBuilder};
    /// use tower_http_retry::{RetryLayer, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::new(String::from("ok")))
    /// });
    /// let client = ServiceBuilder::new()
    ///     .layer(RetryLayer::new(RetryPolicy::default()))
    ///     .service(server);
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    /// assert_eq!(response.body().get_ref().unwrap(), "ok");
    /// # }
    /// ```
    pub fn oneshot<ReqB, ResB>(
        &self,
        request: Request<ReqB>,
    ) -> impl Future<Output = Result<Response<ResB>, Error>> + use<S, C, ReqB, ResB>
    where
        Self: Service<Request<ReqB>, Response = Response<ResB>, Error = Error> + Clone,
    {
        let mut service = self.clone();
        async move {
            std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
            service.call(request).await
        }
    }
}

impl Retry<()> {
    /// A [`RetryLayer`](crate::RetryLayer) that wraps services in `Retry` by `policy`, as
    /// `RetryLayer::new(policy)` does.
    ///
    /// ```
    /// use tower::ServiceBuilder;
    /// use tower_http_retry::{Retry, RetryPolicy};
    /// # let client = tower::service_fn(|_: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// # });
    ///
    /// let service = ServiceBuilder::new()
    ///     .layer(Retry::layer(RetryPolicy::default().max_attempts(3)))
    ///     .service(client);
    /// # let _ = service;
    /// ```
    pub fn layer(policy: RetryPolicy) -> crate::RetryLayer {
        crate::RetryLayer::new(policy)
    }
}

impl<S, C, ReqB, ResB> Service<Request<ReqB>> for Retry<S, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    S::Error: Into<BoxError>,
    ReqB: ReplayableBody,
    ResB: Body,
    ResB::Error: Into<BoxError>,
    C: CheckBeforeRetry<CheckService<S>, ReqB, ResB> + Clone,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = Error;
    type Future = ResponseFuture<S, ReqB, ResB, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|error| Error::not_ready(error.into(), RetryHistory::default()))
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        // The instance that was polled ready goes with the call; `self` keeps a fresh clone.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(
            ready,
            self.policy.clone(),
            self.check.clone(),
            request,
            self.origin,
        )
    }
}
