//! An asynchronous check before re-sending a request that may have taken effect ("before retrying a
//! timed-out request, GET /v1/transcriptions and skip the retry if you see a row with the same key";
//! "verify whether the previous attempt actually finished before posting again").
//!
//! Without a check, a request that may have taken effect and is not idempotent is never sent again
//! ([`Decision::Unsafe`](crate::classify::Decision::Unsafe)). With one, such an outcome becomes a
//! candidate for a retry, within every limit of the policy (attempts, budget, deadline); after the
//! wait, just before the request would be sent again, the layer runs the check, which may send
//! requests of its own through a clone of the inner service, and answers:
//!
//! - [`CheckVerdict::Retry`]: nothing took effect; send the request again.
//! - [`CheckVerdict::Stop`]: stop, and return the last attempt's outcome.
//! - [`CheckVerdict::Respond`]: stop, and return this response instead (the job the check found).
//!
//! Outcomes that are safe to retry (an idempotent request, a keyed one, a 429) are retried without a
//! check. The last response is kept for `Stop` until the check sends a request of its own and
//! waits for it; then, unless its body has ended, it is let go of: its unread body may hold the
//! connection or stream that request needs (a server that allows one HTTP/2 stream at a time, a
//! limit on connections), and the check would wait for it forever. Its status stays in the
//! history; `Stop` then ends the call with an [`Error`](crate::Error) whose history holds it (stop
//! reason [`CheckStopped`](crate::history::StopReason::CheckStopped)). A check that answers without
//! a request of its own, a failure, or a response whose body had ended return the outcome as it is.
//!
//! The check runs within the call's deadline and, like an attempt, within the attempt timeout:
//! when the deadline passes first, the check is dropped and the call ends with the deadline error;
//! when the attempt timeout does, the call ends as if the check had said stop, with stop reason
//! [`CheckTimedOut`](crate::history::StopReason::CheckTimedOut). With neither, a check is as
//! unbounded as an attempt is. Its requests are not attempts; the history records them
//! ([`RetryHistory::checks`](crate::RetryHistory::checks)).
//!
//! # Why a type parameter
//!
//! The check is a type parameter of [`RetryLayer`](crate::RetryLayer), [`Retry`](crate::Retry) and
//! [`ResponseFuture`](crate::ResponseFuture), [`NoCheck`] by default, rather than a boxed hook in the
//! [`RetryPolicy`](crate::RetryPolicy): the check needs the inner service's own type (to send its
//! GET through the same stack) and its response type (to return the job it found), which a policy
//! shared by every stack cannot name. As a parameter, a check for the wrong service is a compile
//! error, not a failed downcast at run time; no bound (`'static`, `Send`) is added for users without
//! a check; and with [`NoCheck`] a call costs no allocation and no clock read more, its branches are
//! on a constant ([`CheckBeforeRetry::RUNS`]), and its future is zero-sized, so the call's state holds
//! only two more empty pointers.

use std::future::{pending, Future, Pending};
use std::time::Duration;

use http::request::Parts;
use http::Response;

use crate::classify::Outcome;

/// A check before re-sending a request that may have taken effect. `S` is the service the check can
/// send requests through (a [`CheckService`](crate::check::CheckService) around a clone of the inner
/// service), `ReqB` the request body type and `ResB` the response body type.
///
/// Implement it generically over `S`, so that it fits whatever stack the layer wraps:
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body_util::Full;
/// use tower::{Service, ServiceExt};
/// use tower_http_retry::check::{CheckBeforeRetry, CheckRequest, CheckVerdict};
/// use tower_http_retry::BoxError;
///
/// /// Voice-clone uploads: retry only when the previous upload did not finish.
/// #[derive(Clone)]
/// struct UploadFinished;
///
/// impl<S> CheckBeforeRetry<S, Full<Bytes>, Full<Bytes>> for UploadFinished
/// where
///     S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>> + Send + 'static,
///     S::Future: Send,
///     S::Error: Into<BoxError>,
/// {
///     type Future = Pin<Box<dyn Future<Output = CheckVerdict<Full<Bytes>>> + Send>>;
///
///     fn check(&self, service: S, request: CheckRequest<'_, Full<Bytes>>) -> Self::Future {
///         let name = request.head.headers.get("x-voice-name").cloned();
///         Box::pin(async move {
///             let Some(name) = name else { return CheckVerdict::Stop };
///             let list = Request::get("http://api.test/v1/voices")
///                 .header("x-voice-name", name)
///                 .body(Full::default())
///                 .unwrap();
///             match service.oneshot(list).await {
///                 Ok(found) if found.status() == 200 => CheckVerdict::Respond(found),
///                 Ok(missing) if missing.status() == 404 => CheckVerdict::Retry,
///                 _ => CheckVerdict::Stop, // cannot tell: never risk a duplicate
///             }
///         })
///     }
/// }
/// ```
pub trait CheckBeforeRetry<S, ReqB, ResB> {
    /// The check's answer, to come.
    type Future: Future<Output = CheckVerdict<ResB>>;

    /// Whether the check ever runs: `false` only for [`NoCheck`], so that a layer without a check keeps
    /// its behaviour and its costs exactly.
    const RUNS: bool = true;

    /// Starts the check of `request`'s last outcome. `service` is a fresh clone of the inner service
    /// (not yet ready: drive it with `oneshot` or `ready`), wrapped so that its requests are recorded.
    fn check(&self, service: S, request: CheckRequest<'_, ReqB>) -> Self::Future;
}

/// What a check is given: the request as first sent, a copy of its body, the outcome that may have
/// taken effect, and how long the call has run.
///
/// ```
/// use tower_http_retry::check::CheckRequest;
///
/// fn key_in_body(request: &CheckRequest<'_, String>) -> bool {
///     request.body.as_deref().is_some_and(|body| body.contains("idempotency_key"))
/// }
/// # let _ = key_in_body;
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct CheckRequest<'a, ReqB> {
    /// The head of the first attempt, idempotency key included.
    pub head: &'a Parts,
    /// A copy of the request body (`None` when it cannot be sent again).
    pub body: Option<ReqB>,
    /// The last attempt's outcome.
    pub outcome: Outcome<'a>,
    /// The attempt that produced it, counting from 1.
    pub attempt: u32,
    /// The time since the call started.
    pub elapsed: Duration,
}

/// A check's answer.
///
/// ```
/// use tower_http_retry::check::CheckVerdict;
///
/// let verdict: CheckVerdict<String> = CheckVerdict::Retry;
/// assert!(matches!(verdict, CheckVerdict::Retry));
/// ```
#[derive(Debug)]
pub enum CheckVerdict<ResB> {
    /// Nothing took effect: send the request again.
    Retry,
    /// Stop, and return the last attempt's outcome (when the check cannot tell, this is the safe
    /// answer); an error carrying it in its history when the response was let go of for the check
    /// (see the [module](crate::check)).
    Stop,
    /// Stop, and return this response instead of the last outcome.
    Respond(Response<ResB>),
}

/// No check: the default. A request that may have taken effect and is not idempotent is not sent
/// again.
///
/// ```
/// use tower_http_retry::check::NoCheck;
/// use tower_http_retry::{Retry, RetryPolicy};
/// # let client = tower::service_fn(|_: http::Request<String>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// # });
///
/// let service: Retry<_, NoCheck> = Retry::new(client, RetryPolicy::default());
/// # let _ = service;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCheck;

impl<S, ReqB, ResB> CheckBeforeRetry<S, ReqB, ResB> for NoCheck {
    // Never started (`RUNS` is false); a zero-sized future keeps the call's state as small as before.
    type Future = Pending<CheckVerdict<ResB>>;

    const RUNS: bool = false;

    fn check(&self, _: S, _: CheckRequest<'_, ReqB>) -> Self::Future {
        pending()
    }
}
