//! Extreme settings and header values: `Duration::MAX`, `u64::MAX`, `u32::MAX` and zero through every
//! public builder and every parsed header. No call panics or hangs; each ends with a response or an
//! error that says why.

use retry_test_support::watchdog;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::body::{ReplayBody, ReplayBodyLayer};
use tower_http_retry::budget::RetryBudget;
use tower_http_retry::classify::RetryClass;
use tower_http_retry::retry_after::RetryAfterMode;
use tower_http_retry::throttle::Throttle;
use tower_http_retry::{RetryLayer, RetryPolicy};

const MAX: Duration = Duration::MAX;
const HUGE_SECS: [&str; 5] = [
    "18446744073709551615",
    "9223372026854775807",
    "9223372036854775807",
    "99999999999999999999999",
    "4294967295",
];

fn durations() -> [Duration; 4] {
    [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_secs(u64::from(u32::MAX)),
        MAX,
    ]
}

/// Every setting at its extremes, one policy each, plus a few all at once.
fn policies() -> Vec<RetryPolicy> {
    let base = || RetryPolicy::default().seed(7);
    let mut all = Vec::new();
    for d in durations() {
        all.push(base().max_retry_after(d).throttle(Throttle::new()));
        all.push(base().max_retry_after(d));
        all.push(base().deadline(d));
        all.push(base().attempt_timeout(d));
        all.push(base().backoff(Backoff::constant(d)));
        all.push(base().backoff(Backoff::constant(d).jitter(Jitter::None)));
        all.push(base().backoff(Backoff::exponential(d).max_delay(MAX)));
        all.push(base().backoff(Backoff::exponential(d).multiplier(f64::MAX).max_delay(MAX)));
        all.push(base().backoff(Backoff::linear(d, MAX).max_delay(d)));
        all.push(base().backoff(Backoff::schedule([d, MAX, Duration::ZERO])));
        all.push(base().backoff_for(
            RetryClass::Throttling,
            Backoff::exponential(d).max_delay(MAX),
        ));
        for jitter in [
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
            Jitter::None,
        ] {
            all.push(base().backoff(Backoff::exponential(d).max_delay(MAX).jitter(jitter)));
        }
        all.push(base().retry_budget(RetryBudget::builder().window(d).build()));
    }
    for n in [0, 1, u32::MAX] {
        all.push(base().max_attempts(n));
        all.push(base().max_attempts_for(RetryClass::Throttling, n));
        all.push(base().retry_budget(RetryBudget::builder().floor(n).build()));
    }
    for ratio in [0.0, f64::MAX, f64::INFINITY, f64::NAN, -1.0] {
        all.push(
            base().retry_budget(
                RetryBudget::builder()
                    .ratio(ratio)
                    .cost(RetryClass::Transient, ratio)
                    .cost(RetryClass::Throttling, ratio)
                    .build(),
            ),
        );
    }
    for limit in [0, 1, u64::MAX] {
        all.push(base().drain_limit(limit));
    }
    for mode in [RetryAfterMode::Exact, RetryAfterMode::Floor] {
        all.push(
            base()
                .retry_after_mode(mode)
                .max_retry_after(MAX)
                .deadline(MAX)
                .attempt_timeout(MAX)
                .max_attempts(u32::MAX)
                .backoff(Backoff::exponential(MAX).max_delay(MAX))
                .throttle(Throttle::new()),
        );
    }
    all
}

/// Every header that asks for a delay, at its extremes.
fn headers() -> Vec<(&'static str, String)> {
    let mut all = Vec::new();
    for secs in HUGE_SECS.iter().chain(&["0", "1"]) {
        all.push(("retry-after", secs.to_string()));
        all.push(("ratelimit", format!("\"default\";r=0;t={secs}")));
        all.push(("ratelimit-reset", secs.to_string()));
        all.push(("x-ratelimit-reset", secs.to_string()));
        all.push(("x-ratelimit-reset-after", format!("{secs}.999999999")));
    }
    all.push(("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT".into()));
    all.push(("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT".into()));
    all
}

/// What the test server answers.
type Answer = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;

/// A server answering `status` with `header` (and `x-ratelimit-remaining: 0`) once, then 200.
fn server(
    status: u16,
    header: (&'static str, String),
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = Answer,
> + Clone {
    let calls = Arc::new(AtomicUsize::new(0));
    service_fn(move |_: Request<Full<Bytes>>| {
        let mut response = Response::new(Full::new(Bytes::from_static(b"body")));
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            response
                .headers_mut()
                .insert(header.0, header.1.parse().unwrap());
            response
                .headers_mut()
                .insert("x-ratelimit-remaining", "0".parse().unwrap());
        }
        std::future::ready(Ok(response))
    })
}

#[test]
fn no_setting_and_no_header_makes_a_call_panic_or_hang() {
    let calls = watchdog::within(Duration::from_secs(60), true, || async {
        let mut calls = 0;
        for policy in policies() {
            for header in headers() {
                for status in [503, 429, 200] {
                    for method in [http::Method::GET, http::Method::POST] {
                        let client = ServiceBuilder::new()
                            .layer(RetryLayer::new(policy.clone()))
                            .service(server(status, header.clone()));
                        let request = Request::builder()
                            .method(method)
                            .uri("http://api.test/")
                            .body(Full::new(Bytes::from_static(b"{}")))
                            .unwrap();
                        // Either ending is sane; what matters is that it ends.
                        let _ = client.oneshot(request).await;
                        calls += 1;
                    }
                }
            }
        }
        calls
    });
    assert!(calls > 1000, "{calls}");
}

#[test]
fn a_pushback_hold_of_any_length_never_makes_a_later_call_panic() {
    watchdog::within(Duration::from_secs(20), true, || async {
        let api = Uri::from_static("http://api.test/");
        for secs in [u64::MAX, 9_223_372_026_854_775_807, u64::from(u32::MAX)] {
            for hold in [
                Duration::from_secs(secs),
                MAX,
                Duration::new(secs, 999_999_999),
            ] {
                let pushback = Throttle::new();
                pushback.hold(&api, hold);
                let client = ServiceBuilder::new()
                    .layer(RetryLayer::new(
                        RetryPolicy::default()
                            .throttle(pushback.clone())
                            .deadline(Duration::from_secs(1)),
                    ))
                    .service(server(200, ("x-none", String::new())));
                let request = Request::get(api.clone()).body(Full::default()).unwrap();
                let _ = client.oneshot(request).await;
            }
        }
    });
}

#[test]
fn replay_limits_at_their_extremes_send_the_body_whole() {
    watchdog::within(Duration::from_secs(20), true, || async {
        for limit in [0, 1, u64::MAX] {
            let echo = service_fn(|request: Request<ReplayBody<Full<Bytes>>>| async move {
                let bytes = request.into_body().collect().await.unwrap().to_bytes();
                Ok::<_, Infallible>(Response::new(Full::new(bytes)))
            });
            let client = ServiceBuilder::new()
                .layer(ReplayBodyLayer::new().limit(limit))
                .service(echo);
            let request = Request::new(Full::new(Bytes::from_static(b"payload")));
            let response = client.oneshot(request).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "payload", "limit {limit}");
            let body = ReplayBody::with_limit(Full::new(Bytes::from_static(b"x")), limit);
            assert_eq!(body.limit(), limit);
        }
    });
}
