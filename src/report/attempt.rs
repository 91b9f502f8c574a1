//! The attempt number a request carries to the layers inside the retry.

/// Which attempt of a call a request is: a request extension the layer puts on every attempt, the
/// first included, when the policy asks for it ([`RetryPolicy::mark_attempts`](crate::RetryPolicy::mark_attempts)).
///
/// A layer inside the retry (a `TraceLayer`, a layer of your own) reads it to record OpenTelemetry's
/// `http.request.resend_count`, which is [`resend_count`](Self::resend_count).
///
/// ```
/// use std::convert::Infallible;
/// use std::sync::{Arc, Mutex};
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceExt};
/// use tower_http_retry::{Attempt, Retry, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let server = service_fn(move |request: Request<String>| {
///     let attempt = *request.extensions().get::<Attempt>().unwrap();
///     log.lock().unwrap().push(attempt.resend_count());
///     let status = if attempt.number() < 3 { 503 } else { 200 };
///     async move { Ok::<_, Infallible>(Response::builder().status(status).body(String::new()).unwrap()) }
/// });
/// let client = Retry::new(server, RetryPolicy::default().mark_attempts());
/// client.oneshot(Request::new(String::new())).await.unwrap();
/// assert_eq!(*seen.lock().unwrap(), [0, 1, 2]);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attempt(pub(crate) u32);

impl Attempt {
    /// The attempt's number: 1 for the first.
    ///
    /// ```
    /// # use tower_http_retry::Attempt;
    /// # fn read(request: &http::Request<()>) -> Option<u32> {
    /// request.extensions().get::<Attempt>().map(|a| a.number())
    /// # }
    /// ```
    pub fn number(self) -> u32 {
        self.0
    }

    /// Attempts before this one: OpenTelemetry's `http.request.resend_count` (0 for the first).
    ///
    /// ```
    /// # use tower_http_retry::Attempt;
    /// # fn read(request: &http::Request<()>) -> u32 {
    /// request.extensions().get::<Attempt>().map_or(0, |a| a.resend_count())
    /// # }
    /// ```
    pub fn resend_count(self) -> u32 {
        self.0.saturating_sub(1)
    }
}
