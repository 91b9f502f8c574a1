//! [`RetryLayer`]: wraps a service in [`Retry`].

use std::sync::Arc;

use tower_layer::Layer;

use crate::policy::check::NoCheck;
use crate::policy::retry_policy::RetryPolicy;
use crate::service::retry::Retry;

/// Applies a [`RetryPolicy`] to every request of the services it wraps.
///
/// Every service made by one layer shares its policy (and, through it, its seeded random sequence).
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_http_retry::{RetryLayer, RetryPolicy};
/// # let client = tower::service_fn(|_: http::Request<String>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// # });
///
/// let service = ServiceBuilder::new()
///     .layer(RetryLayer::new(RetryPolicy::default().max_attempts(3)))
///     .service(client);
/// # let _ = service;
/// ```
#[derive(Clone, Debug, Default)]
pub struct RetryLayer<C = NoCheck> {
    policy: Arc<RetryPolicy>,
    check: C,
}

impl RetryLayer {
    /// A layer that retries by `policy`.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response, StatusCode};
    /// use tower::{service_fn, ServiceBuilder, ServiceExt};
    /// use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::builder().status(503).body(String::new()).unwrap())
    /// });
    /// let client = ServiceBuilder::new()
    ///     .layer(RetryLayer::new(RetryPolicy::default().max_attempts(2)))
    ///     .service(server);
    ///
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// assert_eq!(history.attempt_count(), 2);
    /// # }
    /// ```
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
            check: NoCheck,
        }
    }
}

impl<C> RetryLayer<C> {
    /// Runs `check` before re-sending a request that may have taken effect, instead of never
    /// re-sending it: see [`check`](crate::check).
    ///
    /// ```
    /// use tower_http_retry::check::NoCheck;
    /// use tower_http_retry::{RetryLayer, RetryPolicy};
    ///
    /// // Any `CheckBeforeRetry` for the wrapped service; `NoCheck` is the default.
    /// let layer = RetryLayer::new(RetryPolicy::default()).check_before_retry(NoCheck);
    /// # let _ = layer;
    /// ```
    pub fn check_before_retry<C2>(self, check: C2) -> RetryLayer<C2> {
        RetryLayer {
            policy: self.policy,
            check,
        }
    }

    /// The policy this layer applies.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

impl<S, C: Clone> Layer<S> for RetryLayer<C> {
    type Service = Retry<S, C>;

    fn layer(&self, inner: S) -> Retry<S, C> {
        Retry::from_shared(inner, self.policy.clone(), self.check.clone())
    }
}
