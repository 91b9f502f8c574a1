//! The gRPC rules of a [`RetryPolicy`]: how a gRPC response head is judged, and the call's deadline.

use std::time::{Duration, SystemTime};

use http::{Extensions, HeaderMap, StatusCode};

use crate::classify::grpc::{headers, GrpcCode, GrpcPolicy, ServerPushback, GRPC_STATUS};
use crate::classify::{Decision, Outcome, RequestInfo, RetryClass};
use crate::history::{AttemptOutcome, WaitReason};
use crate::plan::Asked;
use crate::policy::RetryPolicy;
use crate::rate_limit::server_delay;

/// Judges a gRPC response head: the decision, the delay the server asked for, and the outcome for
/// the history.
pub(crate) fn judge(
    policy: &RetryPolicy,
    grpc: &GrpcPolicy,
    request: &RequestInfo<'_>,
    status: StatusCode,
    headers: &HeaderMap,
    extensions: &Extensions,
    trailers: Option<&HeaderMap>,
) -> (Decision, Option<Asked>, AttemptOutcome) {
    // A response read whole (`buffer_responses`) without a status in its head has it in its
    // trailers: nothing was passed to the caller yet, so A6 lets it be retried.
    let headers = match trailers {
        Some(trailers)
            if !headers.contains_key(GRPC_STATUS) && trailers.contains_key(GRPC_STATUS) =>
        {
            trailers
        }
        _ => headers,
    };
    let code = GrpcCode::of_response(status, headers);
    let outcome = code.map_or(AttemptOutcome::Status(status), AttemptOutcome::Grpc);
    let hook = policy.classify.as_ref().and_then(|hook| {
        hook(
            request,
            &Outcome::Response {
                status,
                headers,
                extensions,
            },
        )
    });
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
        // The pushback holds this call (its retry waits it), not the server's other calls: an
        // answer about one call's method or replica says nothing about the rest (the throttle
        // learns a rate from RESOURCE_EXHAUSTED itself, as from a 429).
        ServerPushback::After(delay) => {
            (decision, Some((delay, WaitReason::GrpcPushback)), outcome)
        }
        ServerPushback::DoNotRetry => (Decision::Done, None, outcome),
        // A proxy's answer may carry Retry-After.
        ServerPushback::Absent => (decision, server_delay(headers, SystemTime::now), outcome),
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
        let key = crate::policy::idempotency::DEFAULT_IDEMPOTENCY_HEADER;
        let request = RequestInfo::new(&Method::POST, &uri, &none, 1, &key);
        judge(
            &policy,
            grpc,
            &request,
            StatusCode::from_u16(status).unwrap(),
            &headers,
            &Extensions::new(),
            None,
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
    async fn a_grpc_pushback_holds_the_call_not_the_server() {
        let shared = crate::shared::throttle::Throttle::new();
        let policy = RetryPolicy::default()
            .throttle(shared.clone())
            .grpc(GrpcPolicy::new());
        let (uri, none) = (
            Uri::from_static("http://svc/pkg.Svc/Call"),
            HeaderMap::new(),
        );
        let key = crate::policy::idempotency::DEFAULT_IDEMPOTENCY_HEADER;
        let request = RequestInfo::new(&Method::POST, &uri, &none, 1, &key);
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("14"));
        for pushback in ["0", "10", "3600000"] {
            headers.insert("grpc-retry-pushback-ms", HeaderValue::from_static(pushback));
            let grpc = policy.grpc.as_deref().unwrap();
            let (_, asked, _) = judge(
                &policy,
                grpc,
                &request,
                StatusCode::OK,
                &headers,
                &Extensions::new(),
                None,
            );
            let ms: u64 = pushback.parse().unwrap();
            assert_eq!(
                asked,
                Some((Duration::from_millis(ms), WaitReason::GrpcPushback)),
                "the call waits it"
            );
            assert_eq!(
                shared.held_until(&uri),
                None,
                "{pushback} ms holds no other call"
            );
            assert_eq!(shared.rate(&uri), None, "nor engages pacing");
        }
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
