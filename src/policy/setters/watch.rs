//! What to watch: the retry events, and the attempt number put on each request.

use std::sync::Arc;

use crate::policy::retry_policy::RetryPolicy;
use crate::report::on_retry::RetryEvent;

/// What to watch: the retry events, and the attempt number on each request.
impl RetryPolicy {
    /// Calls `hook` for every retry (the attempt that ended, its outcome and class, the wait and its
    /// reason) and once when a call that retried or gave up ends (the attempts and why it stopped):
    /// [`RetryEvent`]. A call that succeeds at once calls nothing.
    ///
    /// The hook runs inline, in the call's task, between the attempt and the wait: keep it short
    /// (count, log, record) and never block in it. Set again, it replaces the previous hook.
    ///
    /// ```
    /// use tower_http_retry::{RetryEvent, RetryPolicy};
    ///
    /// let policy = RetryPolicy::default().on_retry(|event| match event {
    ///     RetryEvent::Retry { attempt, outcome, wait, .. } => {
    ///         eprintln!("attempt {attempt}: {outcome:?}, retrying in {:?}", wait.duration)
    ///     }
    ///     RetryEvent::Stop { attempts, reason, .. } if reason.gave_up() => {
    ///         eprintln!("gave up after {attempts} attempts: {reason}")
    ///     }
    ///     _ => {}
    /// });
    /// # let _ = policy;
    /// ```
    pub fn on_retry<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RetryEvent) + Send + Sync + 'static,
    {
        self.observe.on_retry = Some(Arc::new(hook));
        self
    }

    /// Puts an [`Attempt`](crate::Attempt) extension on every attempt's request, the first included,
    /// so that a layer inside the retry can tell which attempt it sees (OpenTelemetry's
    /// `http.request.resend_count`).
    ///
    /// Off by default: the first attempt of a request without extensions would then allocate its
    /// extension map, one allocation more on every call, where the layer otherwise adds none.
    ///
    /// ```
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::default().mark_attempts();
    /// # let _ = policy;
    /// ```
    pub fn mark_attempts(mut self) -> Self {
        self.observe.mark_attempts = true;
        self
    }
}
