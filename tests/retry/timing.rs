//! Exact timing: waits, Retry-After, deadlines and timeouts, under tokio's paused clock with an
//! in-memory scripted service.

use crate::durations::{ms, secs};
use crate::history::history;
use crate::script;

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use script::{status, with_header, Script, Step};
use tokio::time::Instant;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::body::ResponseBody;
use tower_http_retry::classify::ErrorKind;
use tower_http_retry::history::{AttemptOutcome, StopReason, WaitReason};
use tower_http_retry::{RetryLayer, RetryPolicy};

fn get() -> Request<Full<Bytes>> {
    Request::get("http://api.test/items")
        .body(Full::default())
        .unwrap()
}

fn post() -> Request<Full<Bytes>> {
    Request::post("http://api.test/items")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap()
}

/// Exponential from 100 ms, doubling, without jitter: waits of 100, 200, 400 ms.
fn exact() -> RetryPolicy {
    RetryPolicy::default().backoff(Backoff::exponential(ms(100)).jitter(Jitter::None))
}

/// Sends `request` through a retry layer with `policy` in front of `script`.
async fn run(
    policy: RetryPolicy,
    script: &Script,
    request: Request<Full<Bytes>>,
) -> Result<http::Response<ResponseBody<Full<Bytes>>>, tower_http_retry::Error> {
    RetryLayer::new(policy)
        .layer(script.clone())
        .oneshot(request)
        .await
}

#[tokio::test(start_paused = true)]
async fn backoff_waits_are_exact() {
    let script = Script::new([status(503)]);
    let response = run(exact(), &script, get()).await.unwrap();

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(script.call_times(), [ms(0), ms(100), ms(300), ms(700)]);
    let waits: Vec<_> = history(&response)
        .attempts()
        .iter()
        .filter_map(|a| a.wait)
        .map(|w| w.duration)
        .collect();
    assert_eq!(waits, [ms(100), ms(200), ms(400)]);
    assert_eq!(history(&response).total_wait(), ms(700));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_a_floor_under_the_backoff() {
    let script = Script::new([
        with_header(429, "retry-after", 5),
        with_header(503, "retry-after", 0),
        status(200),
    ]);
    // Without the throttle, which would space the third attempt at its learned rate after the 429.
    let response = run(exact().no_throttle(), &script, get()).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    // 5 s asked for beats 100 ms of backoff; 0 s asked for does not shorten the 100 ms backoff (the
    // 503 is the first transient retry: each class counts its own retries).
    assert_eq!(script.call_times(), [ms(0), secs(5), secs(5) + ms(100)]);
    let attempts = history(&response).attempts();
    assert_eq!(attempts[0].wait.unwrap().reason, WaitReason::RetryAfter);
    assert_eq!(attempts[0].retry_after, Some(secs(5)));
    assert_eq!(attempts[1].wait.unwrap().reason, WaitReason::Backoff);
}

#[tokio::test(start_paused = true)]
async fn retry_after_as_a_date_is_read_against_the_server_clock() {
    // The server's clock is a day behind ours; it asks for 3 s past its own Date.
    let date = "Sun, 06 Nov 1994 08:49:37 GMT";
    let retry_at = "Sun, 06 Nov 1994 08:49:40 GMT";
    let script = Script::new([
        Step::Respond(
            503,
            vec![("date", date.into()), ("retry-after", retry_at.into())],
        ),
        status(200),
    ]);
    let response = run(exact(), &script, get()).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(script.call_times(), [ms(0), secs(3)]);
}

#[tokio::test(start_paused = true)]
async fn full_jitter_never_waits_longer_than_the_backoff_and_differs_between_requests() {
    let policy = RetryPolicy::default()
        .backoff(Backoff::constant(secs(10)))
        .max_attempts(2)
        .seed(3);
    let mut waits = Vec::new();
    for _ in 0..4 {
        let script = Script::new([status(503), status(200)]);
        let response = run(policy.clone(), &script, get()).await.unwrap();
        let wait = history(&response).attempts()[0].wait.unwrap().duration;
        assert!(wait <= secs(10));
        // tokio's timer fires on the next whole millisecond.
        let slept = script.call_times()[1];
        assert!(
            slept >= wait && slept - wait < ms(1),
            "slept {slept:?} for a wait of {wait:?}"
        );
        waits.push(wait);
    }
    waits.sort();
    waits.dedup();
    assert_eq!(waits.len(), 4, "every request draws its own jitter");
}

#[tokio::test(start_paused = true)]
async fn the_deadline_stops_a_retry_that_would_sleep_past_it() {
    let script = Script::new([status(503)]);
    let policy = RetryPolicy::default()
        .backoff(Backoff::constant(ms(600)).jitter(Jitter::None))
        .deadline(secs(1));
    let started = Instant::now();
    let response = run(policy, &script, get()).await.unwrap();

    // Attempt 1 at 0, attempt 2 at 600 ms; a third would start at 1.2 s, past the deadline.
    assert_eq!(script.call_times(), [ms(0), ms(600)]);
    assert_eq!(started.elapsed(), ms(600), "returned at once, not slept on");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(history(&response).stop_reason(), StopReason::Deadline);
}

#[tokio::test(start_paused = true)]
async fn retry_after_past_the_deadline_is_returned_at_once() {
    let script = Script::new([with_header(503, "retry-after", 30)]);
    let policy = exact().deadline(secs(10));
    let started = Instant::now();
    let response = run(policy, &script, get()).await.unwrap();

    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(history(&response).stop_reason(), StopReason::Deadline);
    assert_eq!(history(&response).retry_after(), Some(secs(30)));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cancels_an_attempt_in_flight() {
    let script = Script::new([Step::Hang]);
    let policy = exact().deadline(secs(3));
    let started = Instant::now();
    let error = run(policy, &script, get()).await.unwrap_err();

    assert_eq!(started.elapsed(), secs(3));
    assert!(error.is_deadline());
    assert!(error.inner().is_none());
    assert_eq!(
        error.history().attempts()[0].outcome,
        AttemptOutcome::Interrupted
    );
}

#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_fires_then_the_request_is_retried() {
    let script = Script::new([Step::Slow(secs(60), 200), status(200)]);
    let policy = exact().attempt_timeout(secs(2));
    let response = run(policy, &script, get()).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(script.call_times(), [ms(0), secs(2) + ms(100)]);
    assert_eq!(
        history(&response).attempts()[0].outcome,
        AttemptOutcome::Error(ErrorKind::AttemptTimeout)
    );
}

#[tokio::test(start_paused = true)]
async fn an_attempt_timeout_on_a_post_is_not_retried() {
    let script = Script::new([Step::Hang, status(200)]);
    let policy = exact().attempt_timeout(secs(2));
    let error = run(policy, &script, post()).await.unwrap_err();

    assert!(error.is_attempt_timeout());
    assert_eq!(error.history().stop_reason(), StopReason::NotIdempotent);
    assert_eq!(script.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn attempt_timeouts_until_the_limit() {
    let script = Script::new([Step::Hang]);
    let policy = exact().attempt_timeout(secs(1)).max_attempts(3);
    let started = Instant::now();
    let error = run(policy, &script, get()).await.unwrap_err();

    assert!(error.is_attempt_timeout());
    assert!(error.is_attempts_exhausted());
    assert_eq!(started.elapsed(), secs(3) + ms(300));
}

#[tokio::test(start_paused = true)]
async fn attempt_timeouts_and_the_deadline_each_fire_at_their_time() {
    // Timeouts at 2 s and 4.1 s; the third attempt, from 4.3 s, is cut by the deadline at 5 s.
    let script = Script::new([Step::Hang]);
    let policy = exact().attempt_timeout(secs(2)).deadline(secs(5));
    let started = Instant::now();
    let error = run(policy, &script, get()).await.unwrap_err();

    assert!(error.is_deadline());
    assert_eq!(started.elapsed(), secs(5));
    assert_eq!(script.call_times(), [ms(0), ms(2100), ms(4300)]);
    let outcomes: Vec<_> = error
        .history()
        .attempts()
        .iter()
        .map(|a| a.outcome)
        .collect();
    let timed_out = AttemptOutcome::Error(ErrorKind::AttemptTimeout);
    assert_eq!(
        outcomes,
        [timed_out, timed_out, AttemptOutcome::Interrupted]
    );

    // A deadline before the attempt's timeout ends the attempt, as the deadline.
    let script = Script::new([Step::Hang]);
    let policy = exact().attempt_timeout(secs(10)).deadline(secs(3));
    let started = Instant::now();
    let error = run(policy, &script, get()).await.unwrap_err();
    assert!(error.is_deadline());
    assert!(!error.is_attempt_timeout());
    assert_eq!(started.elapsed(), secs(3));
}

#[tokio::test(start_paused = true)]
async fn transport_errors_are_retried_for_get_but_not_post() {
    let script = Script::new([Step::Fail(io::ErrorKind::ConnectionReset), status(200)]);
    let policy = exact();
    let response = run(policy.clone(), &script, get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let script = Script::new([Step::Fail(io::ErrorKind::ConnectionReset), status(200)]);
    let error = run(policy.clone(), &script, post()).await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::Reset));
    let io = error
        .inner()
        .and_then(|e| e.downcast_ref::<io::Error>())
        .expect("the inner error");
    assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);

    let script = Script::new([Step::Fail(io::ErrorKind::ConnectionRefused), status(201)]);
    let response = run(policy.clone(), &script, post()).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(script.calls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn every_attempt_sends_the_same_head_and_body() {
    let script = Script::new([status(503), status(503), status(200)]);
    let mut request = Request::put("http://api.test/doc/1")
        .header("authorization", "Bearer secret")
        .body(Full::new(Bytes::from_static(b"{\"v\":1}")))
        .unwrap();
    request
        .headers_mut()
        .append("x-trace", "a".parse().unwrap());
    run(exact(), &script, request).await.unwrap();

    let calls = script.calls();
    assert_eq!(calls.len(), 3);
    for call in &calls {
        assert_eq!(call.headers, calls[0].headers);
        assert_eq!(call.body, Bytes::from_static(b"{\"v\":1}"));
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_waits_for_the_inner_service_to_be_ready() {
    // One request per 10 s: the retry must wait for the rate limit, not call a service that is not ready.
    // RateLimit is not Clone, so it sits behind a Buffer, as it would in a real stack.
    let script = Script::new([status(503), status(200)]);
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(
            RetryPolicy::default().backoff(Backoff::none()),
        ))
        .buffer(4)
        .rate_limit(1, secs(10))
        .service(script.clone());
    let response = service.oneshot(get()).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(script.call_times(), [ms(0), secs(10)]);
}

#[tokio::test(start_paused = true)]
async fn a_custom_classifier_extends_the_default() {
    use tower_http_retry::classify::{Decision, Outcome, RetryClass};
    let script = Script::new([status(520), status(404), status(200)]);
    let policy = exact().classify_with(|_, outcome| match outcome {
        Outcome::Response { status, .. } if status.as_u16() == 520 => {
            Some(Decision::Retry(RetryClass::Transient))
        }
        _ => None,
    });
    let response = run(policy, &script, get()).await.unwrap();

    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "520 retried by the hook, 404 final by default"
    );
    assert_eq!(history(&response).attempt_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn huge_attempt_numbers_never_overflow() {
    let script = Script::new([status(503)]);
    let policy = RetryPolicy::default()
        .backoff(
            Backoff::exponential(secs(1))
                .multiplier(10.0)
                .max_delay(secs(1))
                .jitter(Jitter::None),
        )
        .max_attempts(2_000);
    let response = run(policy, &script, get()).await.unwrap();

    assert_eq!(history(&response).attempt_count(), 2_000);
    assert_eq!(history(&response).total_wait(), secs(1_999));
}
