//! What to change before a retry: the hook that edits each retry's request head.

use std::sync::Arc;

use http::request::Parts;

use crate::policy::retry_policy::RetryPolicy;

/// What to change in a request before it is sent again.
impl RetryPolicy {
    /// Calls `hook` on the head of every retry before it is sent, with the number of the attempt it
    /// starts (2 for the first retry). Each retry starts from a fresh copy of the first attempt's head,
    /// so changes do not pile up from one retry to the next; the first attempt is sent as the caller
    /// made it.
    ///
    /// The idempotency key header is put back exactly as it was after the hook runs (added, changed or
    /// removed alike): a retry never gets a new key. Outcomes are still judged by the original request's
    /// method and headers.
    ///
    /// ```
    /// use http::HeaderValue;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::default().before_retry(|head, attempt| {
    ///     head.headers.insert("x-attempt", HeaderValue::from(attempt));
    ///     // A signature over the request would be computed afresh here.
    ///     head.headers.insert("x-signed-at", HeaderValue::from_static("1700000000"));
    /// });
    /// # let _ = policy;
    /// ```
    pub fn before_retry<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut Parts, u32) + Send + Sync + 'static,
    {
        self.before_retry = Some(Arc::new(hook));
        self
    }
}
