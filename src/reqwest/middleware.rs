//! [`RetryMiddleware`]: the retry layer as a `reqwest_middleware::Middleware`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use http::Extensions;
use reqwest_middleware::{Middleware, Next};
use tower_service::Service;

use crate::body::ResponseBody;
use crate::check::NoCheck;
use crate::{BoxError, CallSettings, Retry, RetryPolicy};

/// This crate's retries in a [reqwest-middleware] stack: the same engine as
/// [`RetryLayer`](crate::RetryLayer), with the same [`RetryPolicy`] (classification, `Retry-After`
/// and rate-limit headers, backoff, deadline, retry budget, throttle, idempotency keys), run over the
/// rest of the stack. Feature `reqwest-middleware`.
///
/// ```
/// use reqwest_middleware::ClientBuilder;
/// use tower_http_retry::reqwest::RetryMiddleware;
/// use tower_http_retry::RetryPolicy;
///
/// let client = ClientBuilder::new(reqwest::Client::new())
///     .with(RetryMiddleware::new(RetryPolicy::default()))
///     .build();
/// # let _ = client;
/// ```
///
/// Each attempt runs the middlewares added after this one and then the client, with a copy of the
/// request and of the call's extensions; the extensions of the last attempt that finished are the
/// call's when it returns. Clones, and every call through one middleware, share the policy, and with
/// it the retry budget and the throttle.
///
/// - The response carries the [`RetryHistory`](crate::RetryHistory) in its extensions
///   (`response.extensions().get::<RetryHistory>()`) whenever the layer would put it on an
///   `http::Response`, and its `url()` is the one the last attempt reached.
/// - A call that ends in an error returns `reqwest_middleware::Error::Middleware` holding this crate's
///   [`Error`](crate::Error): its history, its `is_deadline()`, `is_attempt_timeout()`, and the last
///   attempt's error (a `reqwest::Error`, or a later middleware's) as its source. Downcast the
///   `anyhow::Error` to reach it.
/// - [`CallSettings`] put on a call with `RequestBuilder::with_extension` apply to that call.
/// - Request bodies: a buffered `reqwest::Body` (bytes, a string, `json`, `form`) is sent again from
///   a copy of its bytes. A streamed one (`Body::wrap_stream`) cannot be: such a request is sent once
///   and never retried (the history's stop reason says the body could not be replayed). reqwest hands
///   a middleware the body as it is, so there is no place for
///   [`ReplayBodyLayer`](crate::body::ReplayBodyLayer) here; buffer the body, or use
///   [`ReqwestService`](super::ReqwestService) under `ReplayBodyLayer` and `RetryLayer`.
///
/// [reqwest-middleware]: https://docs.rs/reqwest-middleware/0.5
#[derive(Clone, Debug, Default)]
pub struct RetryMiddleware {
    policy: Arc<RetryPolicy>,
}

impl RetryMiddleware {
    /// Retries by `policy`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::reqwest::RetryMiddleware;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let middleware = RetryMiddleware::new(RetryPolicy::default().deadline(Duration::from_secs(10)));
    /// # let _ = middleware;
    /// ```
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }

    /// The policy in use.
    ///
    /// ```
    /// use tower_http_retry::reqwest::RetryMiddleware;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let middleware = RetryMiddleware::new(RetryPolicy::default());
    /// let policy: &RetryPolicy = middleware.policy();
    /// # let _ = policy;
    /// ```
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

impl From<RetryPolicy> for RetryMiddleware {
    fn from(policy: RetryPolicy) -> Self {
        Self::new(policy)
    }
}

type MiddlewareFuture<'a> =
    Pin<Box<dyn Future<Output = reqwest_middleware::Result<::reqwest::Response>> + Send + 'a>>;

// Written out as `async_trait` expands the trait's method, so that the crate needs no `async-trait`.
impl Middleware for RetryMiddleware {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        request: ::reqwest::Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> MiddlewareFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let mut request = http::Request::try_from(request)?;
            if let Some(settings) = extensions.get::<CallSettings>()
                && request.extensions().get::<CallSettings>().is_none()
            {
                request.extensions_mut().insert(settings.clone());
            }
            let slot = Mutex::new(std::mem::take(extensions));
            let retry = Retry::from_shared(
                NextService {
                    next,
                    extensions: &slot,
                },
                self.policy.clone(),
                NoCheck,
            );
            let result = retry.oneshot(request).await;
            drop(retry);
            *extensions = slot.into_inner().unwrap_or_else(PoisonError::into_inner);
            match result {
                Ok(response) => Ok(into_reqwest(response)),
                Err(error) => Err(reqwest_middleware::Error::middleware(error)),
            }
        })
    }
}

/// The URL a response came from, kept across its turn as an `http::Response`, which has no URL.
#[derive(Clone)]
struct ResponseUrl(::reqwest::Url);

fn into_reqwest(response: http::Response<ResponseBody<::reqwest::Body>>) -> ::reqwest::Response {
    use ::reqwest::ResponseBuilderExt;

    let (mut parts, body) = response.into_parts();
    // The body as reqwest gave it, unless the layer read it (`buffer_responses`).
    let body = body.into_inner().unwrap_or_else(::reqwest::Body::wrap);
    if let Some(ResponseUrl(url)) = parts.extensions.remove::<ResponseUrl>() {
        // reqwest keeps a converted response's URL in an extension of its own, set only this way.
        let (with_url, ()) = http::Response::builder()
            .url(url)
            .body(())
            .expect("a response head without headers is valid")
            .into_parts();
        parts.extensions.extend(with_url.extensions);
    }
    ::reqwest::Response::from(http::Response::from_parts(parts, body))
}

/// The rest of the middleware stack as the service the retry engine calls once per attempt.
struct NextService<'a> {
    next: Next<'a>,
    /// The call's extensions: each attempt runs with a copy and leaves its own here when it finishes.
    extensions: &'a Mutex<Extensions>,
}

impl Clone for NextService<'_> {
    fn clone(&self) -> Self {
        Self {
            next: self.next.clone(),
            extensions: self.extensions,
        }
    }
}

impl fmt::Debug for NextService<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NextService").finish_non_exhaustive()
    }
}

impl<'a> Service<http::Request<::reqwest::Body>> for NextService<'a> {
    type Response = http::Response<::reqwest::Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send + 'a>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<::reqwest::Body>) -> Self::Future {
        let next = self.next.clone();
        let slot = self.extensions;
        let mut extensions = slot.lock().unwrap_or_else(PoisonError::into_inner).clone();
        Box::pin(async move {
            let request = ::reqwest::Request::try_from(request)?;
            let result = next.run(request, &mut extensions).await;
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = extensions;
            match result {
                Ok(response) => {
                    let url = ResponseUrl(response.url().clone());
                    let mut response = http::Response::from(response);
                    response.extensions_mut().insert(url);
                    Ok(response)
                }
                // Unwrapped, so that the classifier sees reqwest's error (a connect failure, a timeout).
                Err(reqwest_middleware::Error::Reqwest(error)) => Err(error.into()),
                Err(reqwest_middleware::Error::Middleware(error)) => Err(error.into()),
            }
        })
    }
}
