//! Per-call settings: a request extension that adjusts the layer's policy for one call ("both SDKs
//! accept a retry config at the client level and per-call").

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;

use crate::classify::{Decision, Outcome, RequestInfo};
use crate::policy::retry_policy::{ClassifyFn, RetryPolicy};
use crate::wait::backoff::Backoff;

/// Retry settings for one call, put on the request as an extension; the layer takes it off and merges
/// it over its own [`RetryPolicy`] when the call starts.
///
/// Precedence: what a `CallSettings` sets wins over the layer's policy for this call, with two
/// exceptions that protect the stack the layer guards: the [`deadline`](Self::deadline) and the
/// [`attempt_timeout`](Self::attempt_timeout) can only shorten the layer's (a call cannot outlast
/// what the stack's owner allowed). Attempts and backoff replace the layer's (a batch job may ask for
/// more attempts; the retry budget still bounds them), as does whether response bodies are read
/// within the attempt ([`buffer_responses`](Self::buffer_responses),
/// [`stream_responses`](Self::stream_responses)), and a classifier is consulted before the
/// layer's, which still decides what it leaves (`None`). Everything else (budget, throttle,
/// idempotency keys, hooks) stays the layer's.
///
/// A request without one costs one extension lookup; a request with one, a copy of the policy.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
/// use tower_http_retry::{CallSettings, RetryHistory, RetryLayer, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let server = service_fn(|_: Request<String>| async {
///     Ok::<_, Infallible>(Response::builder().status(503).body(String::new()).unwrap())
/// });
/// let client = ServiceBuilder::new()
///     .layer(RetryLayer::new(RetryPolicy::default().max_attempts(5)))
///     .service(server);
///
/// // A user-facing path: fail fast.
/// let mut request = Request::new(String::new());
/// request.extensions_mut().insert(CallSettings::new().max_attempts(2));
/// let response = client.oneshot(request).await.unwrap();
/// assert_eq!(RetryHistory::resend_count(response.extensions()), 1);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct CallSettings {
    max_attempts: Option<u32>,
    deadline: Option<Duration>,
    attempt_timeout: Option<Duration>,
    backoff: Option<Backoff>,
    classify: Option<Arc<ClassifyFn>>,
    /// `Some(None)`: responses stream; `Some(Some(limit))`: bodies read up to `limit`.
    buffer: Option<Option<usize>>,
    hedging: Option<Hedging>,
}

/// What a call says of hedging.
#[derive(Clone, Copy, Debug)]
enum Hedging {
    Off,
    After(Duration),
}

impl CallSettings {
    /// Settings that change nothing yet.
    ///
    /// ```
    /// use tower_http_retry::CallSettings;
    ///
    /// let settings = CallSettings::new();
    /// # let _ = settings;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// No retry for this call: one attempt, whatever the layer allows.
    ///
    /// ```
    /// use tower_http_retry::CallSettings;
    ///
    /// let mut request = http::Request::new(());
    /// request.extensions_mut().insert(CallSettings::new().no_retries());
    /// ```
    pub fn no_retries(self) -> Self {
        self.max_attempts(1)
    }

    /// Attempts in all for this call, the first included (at least 1), for both classes of retries; it
    /// replaces the layer's limit, up or down.
    ///
    /// ```
    /// use tower_http_retry::CallSettings;
    ///
    /// // A background job that must make progress.
    /// let settings = CallSettings::new().max_attempts(10);
    /// # let _ = settings;
    /// ```
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// A deadline for the whole call, waits included; the shorter of this and the layer's applies.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::CallSettings;
    ///
    /// let settings = CallSettings::new().deadline(Duration::from_secs(5));
    /// # let _ = settings;
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// A timeout on each attempt's response head; the shorter of this and the layer's applies.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::CallSettings;
    ///
    /// let settings = CallSettings::new().attempt_timeout(Duration::from_secs(2));
    /// # let _ = settings;
    /// ```
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// The delays between this call's attempts, for both classes; it replaces the layer's.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::backoff::Backoff;
    /// use tower_http_retry::CallSettings;
    ///
    /// // "retry_backoff=2.0: base backoff, doubles per attempt".
    /// let settings = CallSettings::new().backoff(Backoff::exponential(Duration::from_secs(2)));
    /// # let _ = settings;
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// A classifier for this call, consulted before the layer's; `None` leaves the outcome to the
    /// layer's classifier and then the default table.
    ///
    /// ```
    /// use tower_http_retry::classify::Decision;
    /// use tower_http_retry::CallSettings;
    ///
    /// // This call's caller handles a 503 itself.
    /// let settings = CallSettings::new().classify_with(|_, outcome| {
    ///     (outcome.status().map(|s| s.as_u16()) == Some(503)).then_some(Decision::Done)
    /// });
    /// # let _ = settings;
    /// ```
    pub fn classify_with<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RequestInfo<'_>, &Outcome<'_>) -> Option<Decision> + Send + Sync + 'static,
    {
        self.classify = Some(Arc::new(hook));
        self
    }

    /// Reads this call's response bodies within their attempts, up to `limit` bytes, whatever the
    /// layer's policy says: see [`RetryPolicy::buffer_responses`].
    ///
    /// ```
    /// use tower_http_retry::CallSettings;
    ///
    /// // A small JSON answer whose body may carry the real error.
    /// let settings = CallSettings::new().buffer_responses(16 * 1024);
    /// # let _ = settings;
    /// ```
    pub fn buffer_responses(mut self, limit: usize) -> Self {
        self.buffer = Some(Some(limit));
        self
    }

    /// Returns this call's response as soon as its head arrives, its body streaming, even when the
    /// layer's policy [buffers responses](RetryPolicy::buffer_responses): for a download too large
    /// to hold, say.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use bytes::Bytes;
    /// use http::{Request, Response};
    /// use http_body_util::Full;
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::{CallSettings, Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"a large file"))))
    /// });
    /// let client = Retry::new(server, RetryPolicy::default().buffer_responses(1024));
    /// let mut request = Request::new(String::new());
    /// request.extensions_mut().insert(CallSettings::new().stream_responses());
    /// let response = client.oneshot(request).await.unwrap();
    /// // The inner body, untouched: nothing was read ahead.
    /// assert!(response.body().get_ref().is_some());
    /// # }
    /// ```
    pub fn stream_responses(mut self) -> Self {
        self.buffer = Some(None);
        self
    }

    /// No hedging for this call, whatever the layer's policy says.
    ///
    /// ```
    /// use tower_http_retry::CallSettings;
    ///
    /// let settings = CallSettings::new().no_hedging();
    /// # let _ = settings;
    /// ```
    pub fn no_hedging(mut self) -> Self {
        self.hedging = Some(Hedging::Off);
        self
    }

    /// This call's hedges leave `delay` after the attempt before, instead of at the layer's delay.
    /// It changes the delay of the layer's [hedging](crate::hedge) (its cap and budget stay); a
    /// layer that does not hedge does not start to.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::CallSettings;
    ///
    /// let settings = CallSettings::new().hedge_after(Duration::from_millis(5));
    /// # let _ = settings;
    /// ```
    pub fn hedge_after(mut self, delay: Duration) -> Self {
        self.hedging = Some(Hedging::After(delay));
        self
    }

    /// The deadline these settings ask for, if any.
    pub(crate) fn deadline_setting(&self) -> Option<Duration> {
        self.deadline
    }

    /// The layer's policy with these settings merged over it.
    fn merge(&self, layer: &RetryPolicy) -> RetryPolicy {
        let mut policy = layer.clone();
        if let Some(attempts) = self.max_attempts {
            policy = policy.max_attempts(attempts);
        }
        if let Some(backoff) = &self.backoff {
            policy = policy.backoff(backoff.clone());
        }
        policy.deadline = shorter(layer.deadline, self.deadline);
        policy.attempt_timeout = shorter(layer.attempt_timeout, self.attempt_timeout);
        if let Some(buffer) = self.buffer {
            policy.buffer_limit = buffer;
        }
        match self.hedging {
            Some(Hedging::Off) => policy.hedge = None,
            Some(Hedging::After(delay)) => {
                policy.hedge = policy.hedge.take().map(|hedge| hedge.delayed(delay));
            }
            None => {}
        }
        if let Some(call) = &self.classify {
            let (call, layer) = (call.clone(), layer.classify.clone());
            policy.classify = Some(Arc::new(move |request, outcome| {
                call(request, outcome)
                    .or_else(|| layer.as_ref().and_then(|hook| hook(request, outcome)))
            }));
        }
        policy
    }
}

/// The policy for a call: the layer's, or, when the request carries [`CallSettings`], the layer's
/// with them merged over it. The extension is taken off the request.
#[inline]
pub(crate) fn policy_for_call(layer: Arc<RetryPolicy>, head: &mut Parts) -> Arc<RetryPolicy> {
    // Most requests carry no extension at all: then nothing is looked up.
    if head.extensions.is_empty() {
        return layer;
    }
    match head.extensions.remove::<CallSettings>() {
        None => layer,
        Some(settings) => Arc::new(settings.merge(&layer)),
    }
}

fn shorter(layer: Option<Duration>, call: Option<Duration>) -> Option<Duration> {
    match (layer, call) {
        (Some(layer), Some(call)) => Some(layer.min(call)),
        (layer, call) => layer.or(call),
    }
}

impl fmt::Debug for CallSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallSettings")
            .field("max_attempts", &self.max_attempts)
            .field("deadline", &self.deadline)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("backoff", &self.backoff)
            .field("classify", &self.classify.as_ref().map(|_| "<hook>"))
            .field("hedging", &self.hedging)
            .field("buffer", &self.buffer)
            .finish()
    }
}
