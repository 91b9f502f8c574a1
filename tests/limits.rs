//! The retry budget, per-class limits, rate-limit headers and the throttle through the layer, with
//! exact timing under tokio's paused clock and an in-memory scripted service.

use retry_test_support::{durations, script};

/// The retry history the layer attaches to every response it returns (a few lines of this crate's
/// types, so not in the support crate).
mod history {
    use tower_http_retry::RetryHistory;

    /// The history of the call that produced `response`; panics if the layer attached none.
    pub fn history<B>(response: &http::Response<B>) -> &RetryHistory {
        response
            .extensions()
            .get::<RetryHistory>()
            .expect("history")
    }
}
use durations::{ms, secs};
use history::history;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use script::{status, with_header, Script, Step};
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::budget::RetryBudget;
use tower_http_retry::classify::RetryClass;
use tower_http_retry::history::{StopReason, WaitReason};
use tower_http_retry::throttle::Throttle;
use tower_http_retry::{RetryLayer, RetryPolicy};

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .header("x-name", uri)
        .body(Full::default())
        .unwrap()
}

fn api() -> Request<Full<Bytes>> {
    get("http://api.test/items")
}

/// Exponential from 100 ms without jitter for both classes, no budget unless a test gives one.
fn exact() -> RetryPolicy {
    RetryPolicy::default()
        .backoff(Backoff::exponential(ms(100)).jitter(Jitter::None))
        .no_retry_budget()
}

/// When the script saw a call whose `x-name` is `name`.
fn times_of(script: &Script, name: &str, origin: Instant) -> Vec<Duration> {
    script
        .calls()
        .into_iter()
        .filter(|c| c.headers["x-name"] == name)
        .map(|c| c.at - origin)
        .collect()
}

// ---- The budget ----

#[tokio::test(start_paused = true)]
async fn a_budget_refusal_returns_the_last_response_and_says_so() {
    let script = Script::new([status(503), status(502), status(200)]);
    let budget = RetryBudget::builder().floor(1).ratio(0.0).build();
    let response = ServiceBuilder::new()
        .layer(RetryLayer::new(exact().retry_budget(budget)))
        .service(script.clone())
        .oneshot(api())
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(script.calls().len(), 2);
    assert_eq!(
        history(&response).stop_reason(),
        StopReason::BudgetExhausted
    );
    assert!(history(&response).stop_reason().gave_up());
}

#[tokio::test(start_paused = true)]
async fn a_budget_refusal_returns_the_last_error() {
    let script = Script::new([Step::Fail(io::ErrorKind::ConnectionReset), status(200)]);
    let budget = RetryBudget::builder().floor(0).ratio(0.0).build();
    let error = ServiceBuilder::new()
        .layer(RetryLayer::new(exact().retry_budget(budget)))
        .service(script.clone())
        .oneshot(api())
        .await
        .unwrap_err();

    assert!(error.is_budget_exhausted());
    assert_eq!(script.calls().len(), 1);
    let io = error.inner().and_then(|e| e.downcast_ref::<io::Error>());
    assert_eq!(
        io.map(io::Error::kind),
        Some(io::ErrorKind::ConnectionReset)
    );
}

#[tokio::test(start_paused = true)]
async fn clones_of_a_layer_and_layers_given_one_handle_share_a_budget() {
    let budget = RetryBudget::builder().floor(2).ratio(0.0).build();
    let first = RetryLayer::new(exact().retry_budget(budget.clone()));
    let second = RetryLayer::new(exact().retry_budget(budget));
    let mut stops = Vec::new();
    for layer in [first.clone(), first, second] {
        let script = Script::new([status(503), status(200)]);
        let response = ServiceBuilder::new()
            .layer(layer)
            .service(script)
            .oneshot(api())
            .await
            .unwrap();
        stops.push(history(&response).stop_reason());
    }
    assert_eq!(
        stops,
        [
            StopReason::Finished,
            StopReason::Finished,
            StopReason::BudgetExhausted
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn every_call_deposits_once_so_traffic_funds_retries() {
    // No floor: retries are paid for by calls only, a tenth of a retry each.
    let budget = RetryBudget::builder().floor(0).ratio(0.1).build();
    let layer = RetryLayer::new(exact().retry_budget(budget));
    let healthy = Script::new([status(200)]);
    for _ in 0..8 {
        ServiceBuilder::new()
            .layer(layer.clone())
            .service(healthy.clone())
            .oneshot(api())
            .await
            .unwrap();
    }
    let flaky = || Script::new([status(503), status(200)]);
    let refused = ServiceBuilder::new()
        .layer(layer.clone())
        .service(flaky())
        .oneshot(api())
        .await
        .unwrap();
    // 9 calls so far, this one included: not quite one retry's worth.
    assert_eq!(history(&refused).stop_reason(), StopReason::BudgetExhausted);
    // The tenth call pays for its own retry.
    let retried = ServiceBuilder::new()
        .layer(layer)
        .service(flaky())
        .oneshot(api())
        .await
        .unwrap();
    assert_eq!(retried.status(), StatusCode::OK);
}

// ---- Classes ----

#[tokio::test(start_paused = true)]
async fn throttling_and_transient_retries_wait_by_their_own_backoff() {
    let script = Script::new([status(429), status(503), status(429), status(200)]);
    // Without the throttle, which the first 429 engages and which would pace the retries too.
    let policy = exact()
        .backoff_for(
            RetryClass::Throttling,
            Backoff::exponential(secs(2)).jitter(Jitter::None),
        )
        .max_attempts(5)
        .no_throttle();
    let origin = Instant::now();
    let response = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(script.clone())
        .oneshot(api())
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    // 429: 2 s; 503: 100 ms (its first transient retry); 429: 4 s (the second throttling retry).
    let times: Vec<_> = script.calls().iter().map(|c| c.at - origin).collect();
    assert_eq!(
        times,
        [ms(0), secs(2), secs(2) + ms(100), secs(6) + ms(100)]
    );
}

#[tokio::test(start_paused = true)]
async fn each_class_stops_at_its_own_attempt_limit() {
    let policy = exact()
        .max_attempts_for(RetryClass::Throttling, 2)
        .max_attempts_for(RetryClass::Transient, 5);
    let layer = RetryLayer::new(policy);
    let throttled = Script::new([status(429)]);
    let response = ServiceBuilder::new()
        .layer(layer.clone())
        .service(throttled.clone())
        .oneshot(api())
        .await
        .unwrap();
    assert_eq!(history(&response).attempt_count(), 2);
    assert_eq!(
        history(&response).stop_reason(),
        StopReason::AttemptsExhausted
    );

    let failing = Script::new([status(503)]);
    let response = ServiceBuilder::new()
        .layer(layer)
        .service(failing)
        .oneshot(api())
        .await
        .unwrap();
    assert_eq!(history(&response).attempt_count(), 5);
}

// ---- Rate-limit headers ----

#[tokio::test(start_paused = true)]
async fn a_spent_rate_limit_makes_the_retry_wait_for_its_reset() {
    for headers in [
        vec![
            ("x-ratelimit-remaining", "0".to_owned()),
            ("x-ratelimit-reset", "7".to_owned()),
        ],
        vec![("ratelimit", r#""default";r=0;t=7"#.to_owned())],
        vec![
            ("ratelimit", r#""hourly";r=0"#.to_owned()),
            ("ratelimit-policy", r#""hourly";q=100;w=7"#.to_owned()),
        ],
    ] {
        let script = Script::new([Step::Respond(429, headers.clone()), status(200)]);
        let origin = Instant::now();
        let response = ServiceBuilder::new()
            .layer(RetryLayer::new(exact()))
            .service(script.clone())
            .oneshot(api())
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::OK, "{headers:?}");
        assert_eq!(script.calls()[1].at - origin, secs(7), "{headers:?}");
        let first = &history(&response).attempts()[0];
        assert_eq!(first.retry_after, Some(secs(7)));
        assert_eq!(first.wait.unwrap().reason, WaitReason::RateLimitReset);
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_takes_precedence_over_a_rate_limit_reset() {
    let script = Script::new([
        Step::Respond(
            429,
            vec![
                ("retry-after", "2".to_owned()),
                ("ratelimit", r#""default";r=0;t=30"#.to_owned()),
            ],
        ),
        status(200),
    ]);
    let origin = Instant::now();
    let response = ServiceBuilder::new()
        .layer(RetryLayer::new(exact()))
        .service(script.clone())
        .oneshot(api())
        .await
        .unwrap();
    assert_eq!(script.calls()[1].at - origin, secs(2));
    assert_eq!(
        history(&response).attempts()[0].wait.unwrap().reason,
        WaitReason::RetryAfter
    );
}

#[tokio::test(start_paused = true)]
async fn quota_left_or_malformed_fields_leave_the_backoff_alone() {
    for headers in [
        vec![("ratelimit", r#""default";r=3;t=30"#.to_owned())],
        vec![("ratelimit", r#""default";r=0;t=soon"#.to_owned())],
        vec![
            ("x-ratelimit-remaining", "none".to_owned()),
            ("x-ratelimit-reset", "30".to_owned()),
        ],
    ] {
        let script = Script::new([Step::Respond(503, headers.clone()), status(200)]);
        let origin = Instant::now();
        ServiceBuilder::new()
            .layer(RetryLayer::new(exact()))
            .service(script.clone())
            .oneshot(api())
            .await
            .unwrap();
        assert_eq!(script.calls()[1].at - origin, ms(100), "{headers:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_reset_past_max_retry_after_is_returned_at_once() {
    let script = Script::new([with_header(429, "ratelimit", r#""day";r=0;t=86400"#)]);
    let origin = Instant::now();
    let response = ServiceBuilder::new()
        .layer(RetryLayer::new(exact()))
        .service(script.clone())
        .oneshot(api())
        .await
        .unwrap();
    assert_eq!(origin.elapsed(), Duration::ZERO);
    assert_eq!(
        history(&response).stop_reason(),
        StopReason::RetryAfterTooLong
    );
    assert_eq!(history(&response).retry_after(), Some(secs(86400)));
}

// ---- The throttle ----

/// Request A gets a 429 asking for 5 s; 1 s later B goes to the same authority and C to another.
async fn pushback_scenario(throttle: Option<Throttle>) -> (Script, Instant) {
    let script = Script::new([with_header(429, "retry-after", 5), status(200)]);
    let policy = match throttle {
        Some(throttle) => exact().seed(5).throttle(throttle),
        None => exact().seed(5).no_throttle(),
    };
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(script.clone());
    let origin = Instant::now();
    let a = tokio::spawn(service.clone().oneshot(get("http://api.test/a")));
    tokio::time::sleep(secs(1)).await;
    let b = tokio::spawn(service.clone().oneshot(get("http://api.test/b")));
    let c = tokio::spawn(service.oneshot(get("http://other.test/c")));
    for call in [a, b, c] {
        assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    (script, origin)
}

#[tokio::test(start_paused = true)]
async fn the_throttle_holds_first_attempts_to_the_authority_that_asked() {
    let (script, origin) = pushback_scenario(Some(Throttle::new())).await;
    let a = times_of(&script, "http://api.test/a", origin);
    let b = times_of(&script, "http://api.test/b", origin);
    let c = times_of(&script, "http://other.test/c", origin);
    assert_eq!(a.len(), 2);
    // A, told to wait, leaves exactly when asked; B, held behind it, follows at the paced rate.
    assert_eq!(a[1], secs(5));
    assert!(b[0] > secs(5) && b[0] <= secs(6), "{:?}", b[0]);
    assert_eq!(b.len(), 1, "B was held, not refused");
    assert_eq!(c, [secs(1)], "another authority is not held");
}

#[tokio::test(start_paused = true)]
async fn without_the_throttle_first_attempts_are_not_held() {
    let (script, origin) = pushback_scenario(None).await;
    assert_eq!(
        times_of(&script, "http://api.test/a", origin),
        [ms(0), secs(5)]
    );
    assert_eq!(times_of(&script, "http://api.test/b", origin), [secs(1)]);
}

#[tokio::test(start_paused = true)]
async fn a_request_held_past_its_deadline_ends_at_once_with_the_deadline_error() {
    let throttle = Throttle::new();
    throttle.hold(&"http://api.test/".parse::<http::Uri>().unwrap(), secs(30));
    let script = Script::new([status(200)]);
    let origin = Instant::now();
    let error = ServiceBuilder::new()
        .layer(RetryLayer::new(
            exact().throttle(throttle).deadline(secs(3)),
        ))
        .service(script.clone())
        .oneshot(api())
        .await
        .unwrap_err();
    assert!(error.is_deadline());
    assert!(!error.is_not_ready());
    assert_eq!(
        origin.elapsed(),
        Duration::ZERO,
        "its turn would come too late: no waiting"
    );
    assert!(script.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_held_request_gives_back_what_the_ready_service_reserved() {
    // One request at a time below the retry layer. A held request must not keep the only permit, or
    // the request to the other authority would wait for the hold to end.
    let throttle = Throttle::new();
    throttle.hold(&"http://api.test/".parse::<http::Uri>().unwrap(), secs(30));
    let script = Script::new([status(200)]);
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(exact().throttle(throttle)))
        .concurrency_limit(1)
        .service(script.clone());
    let origin = Instant::now();
    let held = tokio::spawn(service.clone().oneshot(api()));
    tokio::task::yield_now().await;
    let other = service.oneshot(get("http://other.test/")).await.unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(origin.elapsed(), Duration::ZERO);
    held.await.unwrap().unwrap();
    assert!(origin.elapsed() >= secs(30));
}

#[tokio::test(start_paused = true)]
async fn a_successful_response_that_spends_the_quota_holds_the_next_requests() {
    let script = Script::new([
        with_header(200, "ratelimit", r#""default";r=0;t=4"#),
        status(200),
    ]);
    // Engaged from the first request: a success's headers are read only once a throttle is engaged.
    let throttle = Throttle::new().from_first_request();
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(exact().throttle(throttle)))
        .service(script.clone());
    let origin = Instant::now();
    service.clone().oneshot(api()).await.unwrap();
    let second = service.oneshot(api()).await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(script.calls()[1].at - origin, secs(4));
}

/// Answers 503 to its first request, then fails to get ready: a pool closed between attempts.
#[derive(Clone, Default)]
struct ClosesAfterOne {
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl tower::Service<Request<Full<Bytes>>> for ClosesAfterOne {
    type Response = http::Response<Full<Bytes>>;
    type Error = tower_http_retry::BoxError;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        use std::sync::atomic::Ordering;
        std::task::Poll::Ready(match self.calls.load(Ordering::SeqCst) {
            0 => Ok(()),
            _ => Err(io::Error::other("pool closed").into()),
        })
    }

    fn call(&mut self, _: Request<Full<Bytes>>) -> Self::Future {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut response = http::Response::new(Full::default());
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        std::future::ready(Ok(response))
    }
}

#[tokio::test(start_paused = true)]
async fn a_service_that_fails_to_get_ready_for_a_retry_ends_the_call_as_not_ready() {
    let service = ClosesAfterOne::default();
    let error = ServiceBuilder::new()
        .layer(RetryLayer::new(exact()))
        .service(service.clone())
        .oneshot(api())
        .await
        .unwrap_err();
    assert!(error.is_not_ready(), "{error}");
    assert!(!error.is_deadline());
    let history = error.history();
    assert_eq!(history.stop_reason(), StopReason::NotReady);
    // The 503 that led to the retry is in the history; nothing else was sent.
    assert_eq!(history.attempts().len(), 1);
    assert_eq!(service.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        error.inner().map(ToString::to_string).as_deref(),
        Some("pool closed")
    );
}
