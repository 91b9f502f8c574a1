//! A keyed request still in flight (409) waits for its `Retry-After` and retries with the same key:
//! exact timing under tokio's paused clock, with an in-memory scripted service.

use crate::durations::ms;
use crate::script;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use script::{status, with_header, Script};
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::history::WaitReason;
use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};

fn post() -> Request<Full<Bytes>> {
    Request::post("http://api.test/v1/charges")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn in_flight_409_waits_at_least_its_retry_after_and_keeps_the_key() {
    let script = Script::new([
        with_header(409, "retry-after", "2"),
        with_header(409, "retry-after", "1"),
        status(201),
    ]);
    let policy = RetryPolicy::default()
        .backoff(Backoff::exponential(ms(100)).jitter(Jitter::None))
        .inject_idempotency_keys();
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(script.clone());
    let response = service.oneshot(post()).await.unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        script.call_times(),
        [Duration::ZERO, ms(2000), ms(3000)],
        "Retry-After is a floor under the 100 ms and 200 ms backoff"
    );
    let calls = script.calls();
    let key = &calls[0].headers["idempotency-key"];
    assert!(calls.iter().all(|c| c.headers["idempotency-key"] == key));
    let history = response.extensions().get::<RetryHistory>().unwrap();
    assert_eq!(history.idempotency_key(), Some(key));
    let reasons: Vec<_> = history
        .attempts()
        .iter()
        .filter_map(|a| a.wait.map(|w| w.reason))
        .collect();
    assert_eq!(reasons, [WaitReason::RetryAfter, WaitReason::RetryAfter]);
}

#[tokio::test(start_paused = true)]
async fn a_409_without_a_key_is_final() {
    let script = Script::new([with_header(409, "retry-after", "1"), status(201)]);
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::default()))
        .service(script.clone());
    let response = service.oneshot(post()).await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(script.calls().len(), 1);
}
