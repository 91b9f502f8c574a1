//! [`RetryLayer`]: wraps a service in [`Retry`].

use std::sync::Arc;

use tower_layer::Layer;

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
pub struct RetryLayer {
    policy: Arc<RetryPolicy>,
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
        }
    }

    /// The policy this layer applies.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry::from_shared(inner, self.policy.clone())
    }
}
