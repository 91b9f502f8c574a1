//! [`GrpcStatus`]: the outermost service of [`GrpcRetryLayer`](super::GrpcRetryLayer). It puts the
//! retry history in the response's metadata, answers a passed deadline and a reset stream as the gRPC
//! status a gRPC client gives them, and records gRFC A96's per-call metrics.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_service::Service;

use super::GrpcCode;
use crate::classify::grpc::GRPC_STATUS;
use crate::report::history::RetryHistory;
use crate::Error;

/// Response metadata: how many attempts the call made (`"3"`). Set on a failed call, and on a
/// successful one that retried.
pub const RETRY_ATTEMPTS: &str = "x-retry-attempts";
/// Response metadata: why the layer stopped, as a short name (`attempts_exhausted`, `deadline`,
/// `finished`, ...: the `stop_reason` label of the metrics). A call that ended `DEADLINE_EXCEEDED` says
/// `deadline`, whichever timer saw the deadline first: the layer's, or the channel's own.
pub const RETRY_STOP: &str = "x-retry-stop";
/// Response metadata: the retry history in one line, as [`RetryHistory`]'s `Display` writes it
/// (`UNAVAILABLE (wait 5ms backoff), UNAVAILABLE: the attempt limit was reached`), in ASCII
/// (microseconds as `us`).
pub const RETRY_HISTORY: &str = "x-retry-history";

const GRPC_MESSAGE: &str = "grpc-message";

/// Wraps the retrying stack that [`GrpcRetryLayer`](super::GrpcRetryLayer) makes:
///
/// - A failed call (a trailers-only response, or one of the errors below) carries the retry history
///   as response metadata, which tonic's `Status::metadata()` keeps: [`RETRY_ATTEMPTS`],
///   [`RETRY_STOP`] and [`RETRY_HISTORY`]. A successful call that retried carries them too.
/// - A call whose deadline passed (the policy's, or the request's `grpc-timeout`) ends with a
///   trailers-only response with `grpc-status: 4` (`DEADLINE_EXCEEDED`), not an error that tonic
///   would report as `UNKNOWN` or `CANCELLED`.
/// - A call whose stream the server reset (with the `http2` feature, which reads the reason) ends with
///   the status gRPC's clients give the reason: `REFUSED_STREAM` is `UNAVAILABLE`, `CANCEL` is
///   `CANCELLED`, `ENHANCE_YOUR_CALM` is `RESOURCE_EXHAUSTED`, `INADEQUATE_SECURITY` is
///   `PERMISSION_DENIED`, any other reason `INTERNAL`.
/// - Any other error is returned as it is: tonic makes it a `Status` whose `source()` is this crate's
///   [`Error`], and [`Error::history`] has the history.
///
/// With the `metrics` feature it records gRFC A96's per-call instruments, labelled `grpc.method` and
/// `grpc.target` (see the [`metrics`](crate::metrics) module).
///
/// A tonic client reads the history of a failed call from its `Status`:
///
/// ```ignore
/// let status = client.check(request).await.unwrap_err();
/// let attempts = status.metadata().get(tower_http_retry::grpc::RETRY_ATTEMPTS);
/// ```
///
/// ```
/// use tower_http_retry::grpc::{RETRY_ATTEMPTS, RETRY_HISTORY, RETRY_STOP};
///
/// assert_eq!((RETRY_ATTEMPTS, RETRY_STOP, RETRY_HISTORY),
///     ("x-retry-attempts", "x-retry-stop", "x-retry-history"));
/// ```
#[derive(Clone, Debug)]
pub struct GrpcStatus<S> {
    inner: S,
    target: Option<HeaderValue>,
}

impl<S> GrpcStatus<S> {
    pub(crate) fn new(inner: S, target: Option<HeaderValue>) -> Self {
        Self { inner, target }
    }

    /// The retrying service inside.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, B, RB> Service<Request<B>> for GrpcStatus<S>
where
    S: Service<Request<B>, Response = Response<RB>, Error = Error>,
    RB: Default,
{
    type Response = Response<RB>;
    type Error = Error;
    type Future = GrpcStatusFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let deadline = crate::classify::grpc::headers::timeout(request.headers())
            .map(|timeout| Instant::now() + timeout);
        let call = Call {
            deadline,
            // The labels are made only for a call that retried: the URI is kept, not copied out.
            #[cfg(feature = "metrics")]
            uri: request.uri().clone(),
            #[cfg(feature = "metrics")]
            target: self.target.clone(),
        };
        #[cfg(not(feature = "metrics"))]
        let _ = &self.target;
        GrpcStatusFuture {
            inner: self.inner.call(request),
            call: Some(call),
        }
    }
}

struct Call {
    deadline: Option<Instant>,
    #[cfg(feature = "metrics")]
    uri: http::Uri,
    #[cfg(feature = "metrics")]
    target: Option<HeaderValue>,
}

pin_project! {
    /// The future of [`GrpcStatus`].
    pub struct GrpcStatusFuture<F> {
        #[pin]
        inner: F,
        call: Option<Call>,
    }
}

impl<F> std::fmt::Debug for GrpcStatusFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcStatusFuture").finish_non_exhaustive()
    }
}

impl<F, RB> Future for GrpcStatusFuture<F>
where
    F: Future<Output = Result<Response<RB>, Error>>,
    RB: Default,
{
    type Output = Result<Response<RB>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let call = this.call.take().expect("polled after completion");
        Poll::Ready(match result {
            Ok(mut response) => {
                let history = response.extensions().get::<RetryHistory>();
                #[cfg(feature = "metrics")]
                if let Some(history) = history {
                    record_metrics(history, &call);
                }
                // A status in the head (trailers-only), or an HTTP error that tonic makes one of.
                let failed = !response.status().is_success()
                    || response
                        .headers()
                        .get(GRPC_STATUS)
                        .is_some_and(|status| status != "0");
                match history {
                    Some(history) => {
                        let history = history.clone();
                        put_history(response.headers_mut(), &history);
                    }
                    // A failure that was final at once passes through the retry untouched.
                    None if failed => {
                        let headers = response.headers_mut();
                        headers.insert(RETRY_ATTEMPTS, HeaderValue::from_static("1"));
                        headers.insert(RETRY_STOP, HeaderValue::from_static("finished"));
                    }
                    None => {}
                }
                Ok(response)
            }
            Err(error) => {
                #[cfg(feature = "metrics")]
                record_metrics(error.history(), &call);
                match status_of(&error, call.deadline) {
                    Some((code, message)) => {
                        let mut response = Response::new(RB::default());
                        *response.status_mut() = StatusCode::OK;
                        let headers = response.headers_mut();
                        headers.insert(GRPC_STATUS, HeaderValue::from(code.as_i32()));
                        if let Ok(message) = HeaderValue::from_str(&percent_encode(&message)) {
                            headers.insert(GRPC_MESSAGE, message);
                        }
                        headers.insert(
                            http::header::CONTENT_TYPE,
                            HeaderValue::from_static("application/grpc"),
                        );
                        put_history(headers, error.history());
                        // The channel's own timer (tonic's, at the request's `grpc-timeout`) may see
                        // the deadline before the layer's: the call stopped at the deadline either way.
                        if code == GrpcCode::DeadlineExceeded {
                            headers.insert(RETRY_STOP, HeaderValue::from_static("deadline"));
                        }
                        Ok(response)
                    }
                    None => Err(error),
                }
            }
        })
    }
}

/// The status a gRPC client gives an error, when it is one this layer answers itself.
fn status_of(error: &Error, deadline: Option<Instant>) -> Option<(GrpcCode, String)> {
    // tonic's own timeout fires at the request's `grpc-timeout` (rounded down to its unit): within a
    // millisecond of the deadline, the deadline is what ended the call.
    let passed = deadline.is_some_and(|d| Instant::now() + Duration::from_millis(1) >= d);
    if error.is_deadline() || passed {
        return Some((GrpcCode::DeadlineExceeded, "deadline exceeded".into()));
    }
    #[cfg(feature = "http2")]
    {
        let mut source = std::error::Error::source(error);
        while let Some(e) = source {
            let reset = e.downcast_ref::<h2::Error>().filter(|h2| h2.is_reset());
            if let Some(reason) = reset.and_then(h2::Error::reason) {
                let code = code_of_reset(reason);
                return Some((code, format!("stream reset: {reason:?}")));
            }
            source = e.source();
        }
    }
    None
}

/// The gRPC code of a RST_STREAM's reason, as grpc-go and grpc-java map it (gRPC's PROTOCOL-HTTP2).
#[cfg(feature = "http2")]
fn code_of_reset(reason: h2::Reason) -> GrpcCode {
    match reason {
        h2::Reason::REFUSED_STREAM => GrpcCode::Unavailable,
        h2::Reason::CANCEL => GrpcCode::Cancelled,
        h2::Reason::ENHANCE_YOUR_CALM => GrpcCode::ResourceExhausted,
        h2::Reason::INADEQUATE_SECURITY => GrpcCode::PermissionDenied,
        _ => GrpcCode::Internal,
    }
}

fn put_history(headers: &mut HeaderMap, history: &RetryHistory) {
    headers.insert(RETRY_ATTEMPTS, HeaderValue::from(history.attempt_count()));
    headers.insert(
        RETRY_STOP,
        HeaderValue::from_static(history.stop_reason().as_label()),
    );
    let line = history.to_string().replace('µ', "u");
    if let Ok(value) = HeaderValue::from_str(&line) {
        headers.insert(RETRY_HISTORY, value);
    }
}

/// `grpc-message`'s encoding: bytes outside printable ASCII, and `%`, as `%XX`.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        match byte {
            b' '..=b'~' if byte != b'%' => out.push(char::from(byte)),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(feature = "metrics")]
fn metrics_labels(call: &Call) -> Vec<metrics::Label> {
    // A96's `grpc.method`: the full method name, `package.Service/Method`, from the service definition.
    let method = call.uri.path().trim_start_matches('/').to_owned();
    let target = match (&call.target, call.uri.authority()) {
        (Some(target), _) => target.to_str().unwrap_or("unknown").to_owned(),
        (None, Some(authority)) => authority.as_str().to_owned(),
        (None, None) => "unknown".to_owned(),
    };
    vec![
        metrics::Label::new(crate::metrics::GRPC_METHOD, method),
        metrics::Label::new(crate::metrics::GRPC_TARGET, target),
    ]
}

/// gRFC A96's per-call instruments, for a call that retried: retries, transparent retries (of
/// attempts the server never saw) and the total delay.
#[cfg(feature = "metrics")]
fn record_metrics(history: &RetryHistory, call: &Call) {
    use crate::report::history::AttemptOutcome;
    let attempts = history.attempts();
    if attempts.len() < 2 {
        return;
    }
    // Every attempt but the last was followed by a retry.
    let retried = &attempts[..attempts.len() - 1];
    let transparent = retried
        .iter()
        .filter(|a| matches!(a.outcome, AttemptOutcome::Error(kind) if kind.is_never_sent()))
        .count();
    let retries = retried.len() - transparent;
    let labels = metrics_labels(call);
    if retries > 0 {
        metrics::histogram!(crate::metrics::GRPC_CALL_RETRIES, labels.to_vec())
            .record(retries as f64);
    }
    if transparent > 0 {
        metrics::histogram!(
            crate::metrics::GRPC_CALL_TRANSPARENT_RETRIES,
            labels.to_vec()
        )
        .record(transparent as f64);
    }
    metrics::histogram!(crate::metrics::GRPC_CALL_RETRY_DELAY, labels.to_vec())
        .record(history.total_wait());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(percent_encode("50% done: ok"), "50%25 done: ok");
        assert_eq!(percent_encode("wait 5µs"), "wait 5%C2%B5s");
    }
}
