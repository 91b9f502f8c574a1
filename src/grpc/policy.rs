//! Which gRPC codes are retried, and how a gRPC response is judged.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

use super::code::{GrpcCode, GRPC_STATUS};
use super::headers;
use super::pushback::ServerPushback;
use crate::classify::{Decision, Outcome, RequestInfo, RetryClass};
use crate::history::{AttemptOutcome, WaitReason};
use crate::plan::Asked;
use crate::policy::RetryPolicy;
use crate::rate_limit::server_delay;

/// The gRPC status codes worth another attempt, and the class each one is retried as.
///
/// The default is gRFC A6's and Envoy's advice: `UNAVAILABLE` is transient (the server, or the
/// connection to it, is down for a moment) and `RESOURCE_EXHAUSTED` is throttling (a quota or the
/// server's capacity is spent: waited on with the throttling backoff). Every other code is final:
/// `INVALID_ARGUMENT`, `NOT_FOUND` and the like cannot be fixed by sending the same call again, and
/// `DEADLINE_EXCEEDED`, `INTERNAL`, `UNKNOWN` and `ABORTED` may have taken effect.
///
/// As in A6, the codes listed are retried whatever the call: every gRPC call is a POST, and it is the
/// service's documentation that says which codes a call may safely be retried on.
///
/// ```
/// use tower_http_retry::classify::RetryClass;
/// use tower_http_retry::grpc::{GrpcCode, GrpcPolicy};
/// use tower_http_retry::RetryPolicy;
///
/// // This service also answers ABORTED to a transaction that lost a race, safe to run again.
/// let grpc = GrpcPolicy::new()
///     .retry_on(GrpcCode::Aborted, RetryClass::Transient)
///     .never_retry(GrpcCode::ResourceExhausted);
/// assert_eq!(grpc.class_of(GrpcCode::Aborted), Some(RetryClass::Transient));
/// assert_eq!(grpc.class_of(GrpcCode::ResourceExhausted), None);
/// let policy = RetryPolicy::default().grpc(grpc);
/// # let _ = policy;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcPolicy {
    classes: [Option<RetryClass>; 17],
}

impl Default for GrpcPolicy {
    fn default() -> Self {
        Self {
            classes: [None; 17],
        }
        .retry_on(GrpcCode::Unavailable, RetryClass::Transient)
        .retry_on(GrpcCode::ResourceExhausted, RetryClass::Throttling)
    }
}

impl GrpcPolicy {
    /// The default: `UNAVAILABLE` (transient) and `RESOURCE_EXHAUSTED` (throttling).
    ///
    /// ```
    /// use tower_http_retry::classify::RetryClass;
    /// use tower_http_retry::grpc::{GrpcCode, GrpcPolicy};
    ///
    /// let grpc = GrpcPolicy::new();
    /// assert_eq!(grpc.class_of(GrpcCode::Unavailable), Some(RetryClass::Transient));
    /// assert_eq!(grpc.class_of(GrpcCode::ResourceExhausted), Some(RetryClass::Throttling));
    /// assert_eq!(grpc.class_of(GrpcCode::InvalidArgument), None);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Retries `code`, as `class` (which picks the backoff and limits: see
    /// [`RetryPolicy::backoff_for`]). `OK` is never retried, whatever is set.
    ///
    /// ```
    /// use tower_http_retry::classify::RetryClass;
    /// use tower_http_retry::grpc::{GrpcCode, GrpcPolicy};
    ///
    /// let grpc = GrpcPolicy::new().retry_on(GrpcCode::Unavailable, RetryClass::Throttling);
    /// assert_eq!(grpc.class_of(GrpcCode::Unavailable), Some(RetryClass::Throttling));
    /// ```
    pub fn retry_on(mut self, code: GrpcCode, class: RetryClass) -> Self {
        if code != GrpcCode::Ok {
            self.classes[code.as_i32() as usize] = Some(class);
        }
        self
    }

    /// Never retries `code`.
    ///
    /// ```
    /// use tower_http_retry::grpc::{GrpcCode, GrpcPolicy};
    ///
    /// let grpc = GrpcPolicy::new().never_retry(GrpcCode::Unavailable);
    /// assert_eq!(grpc.class_of(GrpcCode::Unavailable), None);
    /// ```
    pub fn never_retry(mut self, code: GrpcCode) -> Self {
        self.classes[code.as_i32() as usize] = None;
        self
    }

    /// The class `code` is retried as, or `None` when it is final.
    ///
    /// ```
    /// use tower_http_retry::grpc::{GrpcCode, GrpcPolicy};
    ///
    /// assert_eq!(GrpcPolicy::new().class_of(GrpcCode::Ok), None);
    /// ```
    pub fn class_of(&self, code: GrpcCode) -> Option<RetryClass> {
        self.classes[code.as_i32() as usize]
    }
}

impl RetryPolicy {
    /// Judges responses as gRPC responses: by their `grpc-status` (the code a trailers-only response
    /// carries in its head) and `grpc` codes, honouring `grpc-retry-pushback-ms` to the millisecond, and
    /// marking every retry with `grpc-previous-rpc-attempts`. A `grpc-timeout` on the request is a
    /// deadline for the whole call (the shorter of it and [`deadline`](RetryPolicy::deadline)), and each
    /// retry carries the time left. Transport errors keep the default rules: a call is retried after a
    /// failure only when it never left (a connect error, HTTP/2 REFUSED_STREAM), as A6's transparent
    /// retries. A hook set with [`classify_with`](RetryPolicy::classify_with) still decides first.
    ///
    /// See [`grpc`](crate::grpc) for the whole picture.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::grpc::GrpcPolicy;
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // UNAVAILABLE once (a trailers-only answer), then OK.
    /// let calls = Arc::new(AtomicU32::new(0));
    /// let server = service_fn(move |request: Request<String>| {
    ///     let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
    ///     let retried = request.headers().get("grpc-previous-rpc-attempts").cloned();
    ///     async move {
    ///         let status = if first { "14" } else { "0" };
    ///         assert_eq!(retried.is_some(), !first);
    ///         let response = Response::builder().header("grpc-status", status);
    ///         Ok::<_, Infallible>(response.body(String::new()).unwrap())
    ///     }
    /// });
    /// let client = Retry::new(server, RetryPolicy::default().grpc(GrpcPolicy::default()));
    /// let response = client.oneshot(Request::post("http://svc/pkg.Svc/Call").body(String::new()).unwrap());
    /// let response = response.await.unwrap();
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// assert!(history.to_string().starts_with("UNAVAILABLE (wait "), "{history}");
    /// assert!(history.to_string().ends_with("OK: the outcome was final"), "{history}");
    /// # }
    /// ```
    pub fn grpc(mut self, grpc: GrpcPolicy) -> Self {
        self.grpc = Some(Arc::new(grpc));
        self
    }
}

/// Judges a gRPC response head: the decision, the delay the server asked for, and the outcome for
/// the history.
pub(crate) fn judge(
    policy: &RetryPolicy,
    grpc: &GrpcPolicy,
    request: &RequestInfo<'_>,
    status: StatusCode,
    headers: &HeaderMap,
) -> (Decision, Option<Asked>, AttemptOutcome) {
    let code = GrpcCode::of_response(status, headers);
    let outcome = code.map_or(AttemptOutcome::Status(status), AttemptOutcome::Grpc);
    let hook = policy
        .classify
        .as_ref()
        .and_then(|hook| hook(request, &Outcome::Response { status, headers }));
    // A 200 without grpc-status has begun its answer; its status comes in the trailers, and a call
    // whose response has begun is committed (A6): it is not retried.
    let class = code.and_then(|code| grpc.class_of(code)).map(|class| {
        // A proxy's 429 is throttling, whatever class UNAVAILABLE has.
        let proxy_429 =
            status == StatusCode::TOO_MANY_REQUESTS && !headers.contains_key(GRPC_STATUS);
        if proxy_429 {
            RetryClass::Throttling
        } else {
            class
        }
    });
    let decision = hook.unwrap_or(match class {
        Some(class) => Decision::Retry(class),
        None => Decision::Done,
    });
    if decision == Decision::Done {
        return (decision, None, outcome);
    }
    match ServerPushback::of(headers) {
        ServerPushback::After(delay) => {
            // With shared pushback on, the server's word holds every call to it, as Retry-After does.
            if let Some(shared) = &policy.pushback {
                shared.hold(request.uri, delay.min(policy.max_retry_after));
            }
            (decision, Some((delay, WaitReason::GrpcPushback)), outcome)
        }
        ServerPushback::DoNotRetry => (Decision::Done, None, outcome),
        // A proxy's answer may carry Retry-After.
        ServerPushback::Absent => (decision, server_delay(headers, SystemTime::now()), outcome),
    }
}

/// The call's deadline: the policy's, or the request's `grpc-timeout` when that is sooner.
pub(crate) fn call_deadline(
    policy: &RetryPolicy,
    request: &HeaderMap,
    deadline: Option<Duration>,
) -> Option<Duration> {
    if policy.grpc.is_none() {
        return deadline;
    }
    match (deadline, headers::timeout(request)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue, Method, Uri};

    fn judge_headers(
        grpc: &GrpcPolicy,
        status: u16,
        pairs: &[(&'static str, &'static str)],
    ) -> (Decision, Option<Asked>, AttemptOutcome) {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let policy = RetryPolicy::default();
        let (uri, none) = (
            Uri::from_static("http://svc/pkg.Svc/Call"),
            HeaderMap::new(),
        );
        let key = crate::DEFAULT_IDEMPOTENCY_HEADER;
        let request = RequestInfo::new(&Method::POST, &uri, &none, 1, &key);
        judge(
            &policy,
            grpc,
            &request,
            StatusCode::from_u16(status).unwrap(),
            &headers,
        )
    }

    const TRANSIENT: Decision = Decision::Retry(RetryClass::Transient);
    const THROTTLING: Decision = Decision::Retry(RetryClass::Throttling);

    #[test]
    fn codes_decide_whatever_the_method() {
        let grpc = GrpcPolicy::new();
        let decide = |status, pairs: &[_]| judge_headers(&grpc, status, pairs).0;
        assert_eq!(decide(200, &[("grpc-status", "14")]), TRANSIENT);
        assert_eq!(decide(200, &[("grpc-status", "8")]), THROTTLING);
        assert_eq!(decide(200, &[("grpc-status", "3")]), Decision::Done);
        assert_eq!(decide(200, &[("grpc-status", "0")]), Decision::Done);
        assert_eq!(
            decide(200, &[]),
            Decision::Done,
            "status in the trailers: committed"
        );
        assert_eq!(decide(503, &[]), TRANSIENT, "a proxy's 503 is UNAVAILABLE");
        assert_eq!(decide(429, &[]), THROTTLING, "a proxy's 429 is throttling");
        assert_eq!(decide(404, &[]), Decision::Done, "UNIMPLEMENTED");
    }

    #[test]
    fn pushback_is_exact_and_a_refusal_stops() {
        let grpc = GrpcPolicy::new();
        let unavailable = ("grpc-status", "14");
        let (decision, asked, outcome) =
            judge_headers(&grpc, 200, &[unavailable, ("grpc-retry-pushback-ms", "37")]);
        assert_eq!(decision, TRANSIENT);
        assert_eq!(
            asked,
            Some((Duration::from_millis(37), WaitReason::GrpcPushback))
        );
        assert_eq!(outcome, AttemptOutcome::Grpc(GrpcCode::Unavailable));
        for refusal in ["-1", "soon"] {
            let (decision, asked, _) = judge_headers(
                &grpc,
                200,
                &[unavailable, ("grpc-retry-pushback-ms", refusal)],
            );
            assert_eq!((decision, asked), (Decision::Done, None), "{refusal}");
        }
        // A pushback on a final code changes nothing.
        let (decision, asked, _) = judge_headers(
            &grpc,
            200,
            &[("grpc-status", "3"), ("grpc-retry-pushback-ms", "5")],
        );
        assert_eq!((decision, asked), (Decision::Done, None));
    }

    #[tokio::test(start_paused = true)]
    async fn with_shared_pushback_a_grpc_pushback_holds_the_authority() {
        let shared = crate::pushback::Pushback::new();
        let policy = RetryPolicy::default()
            .pushback(shared.clone())
            .grpc(GrpcPolicy::new());
        let (uri, none) = (
            Uri::from_static("http://svc/pkg.Svc/Call"),
            HeaderMap::new(),
        );
        let key = crate::DEFAULT_IDEMPOTENCY_HEADER;
        let request = RequestInfo::new(&Method::POST, &uri, &none, 1, &key);
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("8"));
        let judge_now = |headers: &HeaderMap| {
            let grpc = policy.grpc.as_deref().unwrap();
            judge(&policy, grpc, &request, StatusCode::OK, headers)
        };

        judge_now(&headers);
        assert_eq!(shared.held_until(&uri), None, "no pushback, no hold");
        headers.insert("grpc-retry-pushback-ms", HeaderValue::from_static("40"));
        let now = tokio::time::Instant::now();
        judge_now(&headers);
        assert_eq!(
            shared.held_until(&uri),
            Some(now + Duration::from_millis(40))
        );
    }

    #[test]
    fn the_deadline_is_the_sooner_of_policy_and_grpc_timeout() {
        let mut request = HeaderMap::new();
        request.insert("grpc-timeout", HeaderValue::from_static("300m"));
        let ms = Duration::from_millis;
        let plain = RetryPolicy::default();
        assert_eq!(
            call_deadline(&plain, &request, None),
            None,
            "without grpc, the header is not read"
        );
        let grpc = RetryPolicy::default().grpc(GrpcPolicy::new());
        assert_eq!(call_deadline(&grpc, &request, None), Some(ms(300)));
        assert_eq!(call_deadline(&grpc, &request, Some(ms(100))), Some(ms(100)));
        assert_eq!(call_deadline(&grpc, &request, Some(ms(900))), Some(ms(300)));
        assert_eq!(
            call_deadline(&grpc, &HeaderMap::new(), Some(ms(900))),
            Some(ms(900))
        );
    }
}
