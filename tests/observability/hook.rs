//! What a caller can watch while calls run: the `on_retry` hook's events, and the attempt number that
//! layers inside the retry read from every attempt's request.

use crate::captured::capture;
use crate::script;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use script::{status, with_header, Script, Step};
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::trace::TraceLayer;
use tower_http_retry::backoff::Backoff;
use tower_http_retry::classify::{ErrorKind, RetryClass};
use tower_http_retry::history::{AttemptOutcome, StopReason, Wait, WaitReason};
use tower_http_retry::throttle::Throttle;
use tower_http_retry::{Attempt, BoxError, RetryEvent, RetryLayer, RetryPolicy};

/// A policy whose hook records every event.
fn recording(policy: RetryPolicy) -> (RetryPolicy, Arc<Mutex<Vec<RetryEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = events.clone();
    let policy = policy.on_retry(move |event| log.lock().unwrap().push(*event));
    (policy, events)
}

fn get() -> Request<Full<Bytes>> {
    Request::get("http://api.test/items")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_hook_sees_each_retry_and_how_the_call_ended() {
    let script = Script::new([
        with_header(503, "retry-after", "2"),
        status(429),
        status(200),
    ]);
    let (policy, events) = recording(RetryPolicy::default().backoff(Backoff::none()));
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(script);
    let response = service.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let events = events.lock().unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    let RetryEvent::Retry {
        attempt,
        outcome,
        class,
        wait,
        ..
    } = events[0]
    else {
        panic!("{events:?}")
    };
    assert_eq!(attempt, 1);
    assert_eq!(
        outcome,
        AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE)
    );
    assert_eq!(class, RetryClass::Transient);
    assert_eq!(
        wait,
        Wait {
            duration: Duration::from_secs(2),
            reason: WaitReason::RetryAfter
        }
    );
    assert!(matches!(
        events[1],
        RetryEvent::Retry {
            attempt: 2,
            outcome: AttemptOutcome::Status(StatusCode::TOO_MANY_REQUESTS),
            class: RetryClass::Throttling,
            wait: Wait {
                reason: WaitReason::Backoff,
                ..
            },
            ..
        }
    ));
    assert!(matches!(
        events[2],
        RetryEvent::Stop {
            attempts: 3,
            outcome: Some(AttemptOutcome::Status(StatusCode::OK)),
            reason: StopReason::Finished,
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn the_hook_is_told_once_when_the_layer_gives_up() {
    // A reset after an unkeyed POST may have taken effect: not retried.
    let script = Script::new([Step::Fail(io::ErrorKind::ConnectionReset)]);
    let (policy, events) = recording(RetryPolicy::default());
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(script);
    let request = Request::post("http://api.test/charges")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    service.oneshot(request).await.unwrap_err();

    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(matches!(
        events[0],
        RetryEvent::Stop {
            attempts: 1,
            outcome: Some(AttemptOutcome::Error(ErrorKind::Reset)),
            reason: StopReason::NotIdempotent,
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_call_that_succeeds_at_once_tells_the_hook_nothing() {
    let script = Script::new([status(200)]);
    let (policy, events) = recording(RetryPolicy::default());
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(script);
    service.oneshot(get()).await.unwrap();
    assert!(events.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_stop_event_comes_when_the_deadline_ends_a_call() {
    let script = Script::new([status(503), Step::Hang]);
    let policy = RetryPolicy::default()
        .backoff(Backoff::constant(Duration::from_millis(100)))
        .deadline(Duration::from_secs(1));
    let (policy, events) = recording(policy);
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(script);
    service.oneshot(get()).await.unwrap_err();

    let events = events.lock().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(
        events[1],
        RetryEvent::Stop {
            attempts: 2,
            outcome: Some(AttemptOutcome::Interrupted),
            reason: StopReason::Deadline,
            ..
        }
    ));
}

type Inner = BoxCloneService<Request<Full<Bytes>>, http::Response<Full<Bytes>>, BoxError>;

/// Records the attempt number each request reaches the inner service with.
fn numbering(script: Script) -> (impl Fn() -> Vec<Option<u32>>, Inner) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let service = ServiceBuilder::new()
        .map_request(move |request: Request<Full<Bytes>>| {
            let attempt = request.extensions().get::<Attempt>().map(|a| a.number());
            log.lock().unwrap().push(attempt);
            request
        })
        .service(script);
    (move || seen.lock().unwrap().clone(), Inner::new(service))
}

#[tokio::test(start_paused = true)]
async fn every_attempt_carries_its_number_when_asked() {
    let (seen, inner) = numbering(Script::new([status(503), status(502), status(200)]));
    let policy = RetryPolicy::default()
        .backoff(Backoff::none())
        .mark_attempts();
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(inner);
    service.oneshot(get()).await.unwrap();
    assert_eq!(seen(), [Some(1), Some(2), Some(3)]);
}

#[tokio::test(start_paused = true)]
async fn without_mark_attempts_the_request_is_left_alone() {
    let (seen, inner) = numbering(Script::new([status(503), status(200)]));
    let policy = RetryPolicy::default().backoff(Backoff::none());
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(inner);
    service.oneshot(get()).await.unwrap();
    assert_eq!(seen(), [None, None]);
}

#[tokio::test(start_paused = true)]
async fn a_first_attempt_held_by_the_throttle_is_still_attempt_one() {
    let (seen, inner) = numbering(Script::new([status(503), status(200)]));
    let throttle = Throttle::new();
    throttle.hold(
        &"http://api.test/".parse::<http::Uri>().unwrap(),
        Duration::from_secs(1),
    );
    let policy = RetryPolicy::default()
        .backoff(Backoff::none())
        .throttle(throttle)
        .mark_attempts();
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(inner);
    service.oneshot(get()).await.unwrap();
    assert_eq!(seen(), [Some(1), Some(2)]);
}

#[tokio::test(start_paused = true)]
async fn a_trace_layer_inside_records_the_resend_count() {
    let (captured, _guard) = capture(tracing::Level::DEBUG);

    // tower-http's TraceLayer, as a user would set it up inside the retry: one span per attempt.
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<Full<Bytes>>| {
        let resend_count = request
            .extensions()
            .get::<Attempt>()
            .map(|a| a.resend_count());
        tracing::info_span!("attempt", http.request.resend_count = resend_count)
    });
    let policy = RetryPolicy::default()
        .backoff(Backoff::none())
        .mark_attempts();
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .layer(trace)
        .service(Script::new([status(503), status(503), status(200)]));
    service.oneshot(get()).await.unwrap();

    let log = captured.text();
    for n in 0..3 {
        let span = format!("attempt{{http.request.resend_count={n}}}: ");
        let line = format!("{span}tower_http::trace::on_request: started processing request");
        assert_eq!(log.matches(&line).count(), 1, "attempt {n}:\n{log}");
    }
}
