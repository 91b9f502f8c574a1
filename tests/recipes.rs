//! Every recipe of `examples/recipes.rs` (compiled from that file, so the lines tested are the lines
//! shown) against scripted responses, with exact waits under tokio's paused clock and an in-memory
//! scripted service.

// The example file itself, so that the recipes tested are the recipes shown.
#[allow(dead_code)] // its `main` and server are for `cargo run --example recipes`
#[path = "../examples/recipes.rs"]
mod recipes;
use retry_test_support::script;

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use recipes::jobs::{Create, JobsApi};
use recipes::{minutes, ms, secs};
use script::{status, with_body, with_header, Script, Step};
use tokio::time::Instant;
use tower::{service_fn, Layer, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::body::{CallTimedOut, ResponseBody};
use tower_http_retry::history::{AttemptOutcome, CheckAnswer, StopReason, WaitReason};
use tower_http_retry::{CallSettings, RetryHistory, RetryLayer, RetryPolicy};

fn request(method: Method) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri("http://api.test/v1/items")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap()
}

async fn run(
    policy: RetryPolicy,
    script: &Script,
    request: Request<Full<Bytes>>,
) -> Result<Response<ResponseBody<Full<Bytes>>>, tower_http_retry::Error> {
    RetryLayer::new(policy)
        .layer(script.clone())
        .oneshot(request)
        .await
}

fn history<B>(response: &Response<B>) -> &RetryHistory {
    response
        .extensions()
        .get::<RetryHistory>()
        .expect("history")
}

fn waits(history: &RetryHistory) -> Vec<Duration> {
    let waits = history.attempts().iter().filter_map(|a| a.wait);
    waits.map(|w| w.duration).collect()
}

/// How many calls `policy` makes for `method` when the first answer is `first` and the next a 200.
async fn calls_after(policy: RetryPolicy, method: Method, first: Step) -> usize {
    let script = Script::new([first, status(200)]);
    let _ = run(policy, &script, request(method)).await;
    script.calls().len()
}

// ---- rate_limit_only ----

#[tokio::test(start_paused = true)]
async fn rate_limit_only_waits_1_2_4_seconds_then_returns_the_429() {
    let script = Script::new([status(429)]);
    let response = run(recipes::rate_limit_only(), &script, request(Method::GET))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(script.call_times(), [secs(0), secs(1), secs(3), secs(7)]);
    assert_eq!(
        history(&response).stop_reason(),
        StopReason::AttemptsExhausted
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_only_waits_exactly_the_retry_after_given() {
    // A longer Retry-After than the backoff, then the backoff, then a shorter one than the 4 s due.
    let script = Script::new([
        with_header(429, "retry-after", 10),
        status(429),
        with_header(429, "retry-after", 1),
        status(200),
    ]);
    let response = run(recipes::rate_limit_only(), &script, request(Method::POST))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(script.call_times(), [secs(0), secs(10), secs(12), secs(13)]);
    let reasons: Vec<_> = history(&response)
        .attempts()
        .iter()
        .filter_map(|a| a.wait.map(|w| w.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            WaitReason::RetryAfter,
            WaitReason::Backoff,
            WaitReason::RetryAfter
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_only_exhausted_result_carries_the_servers_retry_after() {
    let script = Script::new([with_header(429, "retry-after", 7)]);
    let response = run(recipes::rate_limit_only(), &script, request(Method::GET))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(script.call_times(), [secs(0), secs(7), secs(14), secs(21)]);
    assert_eq!(history(&response).retry_after(), Some(secs(7)));
    assert_eq!(
        history(&response).stop_reason(),
        StopReason::AttemptsExhausted
    );

    // Longer than the 60 s the layer sleeps on: returned at once, the delay reported.
    let script = Script::new([with_header(429, "retry-after", 120), status(200)]);
    let response = run(recipes::rate_limit_only(), &script, request(Method::GET))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(script.calls().len(), 1);
    assert_eq!(history(&response).retry_after(), Some(secs(120)));
    assert_eq!(
        history(&response).stop_reason(),
        StopReason::RetryAfterTooLong
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_only_never_retries_5xx_network_errors_or_timeouts() {
    for first in [
        status(500),
        status(503),
        status(400),
        Step::Fail(io::ErrorKind::ConnectionRefused),
        Step::Fail(io::ErrorKind::ConnectionReset),
    ] {
        let calls = calls_after(recipes::rate_limit_only(), Method::GET, first.clone()).await;
        assert_eq!(calls, 1, "{first:?}");
    }

    let script = Script::new([Step::Hang, status(200)]);
    let started = Instant::now();
    let error = run(recipes::rate_limit_only(), &script, request(Method::GET))
        .await
        .unwrap_err();
    assert!(error.is_attempt_timeout());
    assert_eq!(started.elapsed(), secs(30));
    assert_eq!(script.calls().len(), 1);
}

// ---- checklist ----

#[tokio::test(start_paused = true)]
async fn checklist_retries_network_5xx_and_409_with_one_key_and_recognises_the_replay() {
    let script = Script::new([
        Step::Fail(io::ErrorKind::ConnectionReset),
        status(507),
        with_header(409, "retry-after", 2),
        with_header(200, "x-idempotency-replayed", "true"),
    ]);
    let response = run(recipes::checklist(), &script, request(Method::POST))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let history = history(&response);
    assert!(history.is_replayed());
    let keys: Vec<_> = script
        .calls()
        .into_iter()
        .map(|c| c.headers["x-idempotency-key"].clone())
        .collect();
    assert_eq!(keys.len(), 4);
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    assert_eq!(history.idempotency_key(), Some(&keys[0]));
    // Full jitter under 200 ms, 400 ms; then the 409's 2 s, above the 800 ms the backoff allows.
    let waits = waits(history);
    assert!(waits[0] <= ms(200) && waits[1] <= ms(400), "{waits:?}");
    assert_eq!(waits[2], secs(2));
}

#[tokio::test(start_paused = true)]
async fn checklist_retries_429_after_its_retry_after_and_never_other_4xx() {
    let script = Script::new([with_header(429, "retry-after", 3), status(200)]);
    let response = run(recipes::checklist(), &script, request(Method::GET))
        .await
        .unwrap();
    assert_eq!(script.call_times(), [secs(0), secs(3)]);
    assert_eq!(response.status(), StatusCode::OK);

    for code in [400, 401, 403, 404, 422] {
        for method in [Method::GET, Method::POST] {
            let calls = calls_after(recipes::checklist(), method.clone(), status(code)).await;
            assert_eq!(calls, 1, "{method} {code}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn checklist_caps_each_delay_and_the_attempts() {
    let script = Script::new([status(503)]);
    let response = run(recipes::checklist(), &script, request(Method::POST))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(script.calls().len(), 5);
    let waits = waits(history(&response));
    for (n, wait) in waits.iter().enumerate() {
        let cap = (ms(200) * 2u32.pow(n as u32)).min(secs(20));
        assert!(*wait <= cap, "wait {n}: {wait:?} over {cap:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn checklist_times_out_each_attempt_and_ends_at_the_deadline() {
    let script = Script::new([Step::Hang, status(200)]);
    let response = run(recipes::checklist(), &script, request(Method::GET))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let times = script.call_times();
    assert!(
        times[1] >= secs(10) && times[1] <= secs(10) + ms(200),
        "{times:?}"
    );

    // 30 s asked for twice: the second wait would end at the 60 s deadline, so it is not started.
    let script = Script::new([with_header(503, "retry-after", 30)]);
    let response = run(recipes::checklist(), &script, request(Method::GET))
        .await
        .unwrap();
    assert_eq!(script.call_times(), [secs(0), secs(30)]);
    assert_eq!(history(&response).stop_reason(), StopReason::Deadline);
}

// ---- one_hour_backoff ----

#[tokio::test(start_paused = true)]
async fn one_hour_backoff_grows_by_1_5_to_60_s_and_stops_within_the_hour() {
    let script = Script::new([status(503)]);
    let started = Instant::now();
    let response = run(recipes::one_hour_backoff(), &script, request(Method::GET))
        .await
        .unwrap();
    let elapsed = started.elapsed();

    let history = history(&response);
    // The hour ended it, not the retry budget: a lone request never meets the budget.
    assert_eq!(history.stop_reason(), StopReason::Deadline);
    assert!(
        elapsed <= minutes(60) && elapsed > minutes(59),
        "{elapsed:?}"
    );
    let waits = waits(history);
    assert!(waits.len() > 55, "{} retries", waits.len());
    for (n, wait) in waits.iter().enumerate() {
        let delay = Duration::from_secs_f64(0.5 * 1.5f64.powi(n as i32)).min(secs(60));
        assert!(
            *wait >= delay / 2 && *wait <= delay,
            "wait {n}: {wait:?} for a delay of {delay:?}"
        );
    }
    assert!(waits[12..].iter().all(|w| *w >= secs(30)), "capped at 60 s");
}

#[tokio::test(start_paused = true)]
async fn one_hour_backoff_retries_408_429_5xx_and_connection_errors_but_not_400_to_415() {
    for code in [408, 429, 500, 501, 502, 503, 504, 599] {
        let calls = calls_after(recipes::one_hour_backoff(), Method::GET, status(code)).await;
        assert_eq!(calls, 2, "{code}");
    }
    for code in [400, 401, 402, 403, 404, 413, 415] {
        let calls = calls_after(recipes::one_hour_backoff(), Method::GET, status(code)).await;
        assert_eq!(calls, 1, "{code}");
    }
    // A connection that was never made is retried for any method; a reset only when idempotent.
    let refused = Step::Fail(io::ErrorKind::ConnectionRefused);
    let reset = Step::Fail(io::ErrorKind::ConnectionReset);
    let policy = recipes::one_hour_backoff;
    assert_eq!(calls_after(policy(), Method::POST, refused).await, 2);
    assert_eq!(calls_after(policy(), Method::GET, reset.clone()).await, 2);
    assert_eq!(calls_after(policy(), Method::POST, reset).await, 1);
}

// ---- server_errors_with_429_pause ----

#[tokio::test(start_paused = true)]
async fn server_errors_loop_retries_5xx_five_times_with_full_jitter() {
    let script = Script::new([status(503)]);
    let response = run(
        recipes::server_errors_with_429_pause(),
        &script,
        request(Method::GET),
    )
    .await
    .unwrap();
    assert_eq!(script.calls().len(), 6);
    assert_eq!(
        history(&response).stop_reason(),
        StopReason::AttemptsExhausted
    );
    let waits = waits(history(&response));
    let caps = [secs(1), secs(2), secs(4), secs(8), secs(16)];
    for (wait, cap) in waits.iter().zip(caps) {
        assert!(*wait <= cap, "{wait:?} over {cap:?}");
    }

    let errors = Script::new([
        Step::Fail(io::ErrorKind::ConnectionReset),
        Step::Fail(io::ErrorKind::TimedOut),
        status(200),
    ]);
    let response = run(
        recipes::server_errors_with_429_pause(),
        &errors,
        request(Method::GET),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(errors.calls().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn server_errors_loop_pauses_once_on_429_outside_the_exponential_loop() {
    // The 429 waits exactly 1 s, and the 503 after it waits the second exponential delay (at most
    // 2 s), not the third (at most 4 s): over 40 requests, one would show it.
    for _ in 0..40 {
        let script = Script::new([status(503), status(429), status(503), status(200)]);
        let response = run(
            recipes::server_errors_with_429_pause(),
            &script,
            request(Method::GET),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let waits = waits(history(&response));
        assert!(waits[0] <= secs(1), "{waits:?}");
        assert_eq!(waits[1], secs(1));
        assert!(waits[2] <= secs(2), "{waits:?}");
    }

    // The pause neither spends the five transient retries: 1 + 5 + 1 attempts.
    let script = Script::new([status(503), status(503), status(429), status(503)]);
    let response = run(
        recipes::server_errors_with_429_pause(),
        &script,
        request(Method::GET),
    )
    .await
    .unwrap();
    assert_eq!(script.calls().len(), 7);
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    // A second 429 is returned: one pause, not a loop.
    let script = Script::new([status(429), status(429), status(200)]);
    let response = run(
        recipes::server_errors_with_429_pause(),
        &script,
        request(Method::GET),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(script.call_times(), [secs(0), secs(1)]);
}

#[tokio::test(start_paused = true)]
async fn server_errors_loop_waits_the_retry_after_of_a_429_but_at_least_1_s() {
    for (retry_after, wait) in [(5, secs(5)), (0, secs(1))] {
        let script = Script::new([with_header(429, "retry-after", retry_after), status(200)]);
        let response = run(
            recipes::server_errors_with_429_pause(),
            &script,
            request(Method::GET),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            script.call_times(),
            [secs(0), wait],
            "Retry-After {retry_after}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn server_errors_loop_never_retries_4xx_and_ends_at_2_minutes() {
    for code in [400, 401, 404, 408, 409, 422] {
        for method in [Method::GET, Method::POST] {
            let policy = recipes::server_errors_with_429_pause();
            let calls = calls_after(policy, method.clone(), status(code)).await;
            assert_eq!(calls, 1, "{method} {code}");
        }
    }

    let script = Script::new([with_header(503, "retry-after", 50)]);
    let response = run(
        recipes::server_errors_with_429_pause(),
        &script,
        request(Method::GET),
    )
    .await
    .unwrap();
    assert_eq!(script.call_times(), [secs(0), secs(50), secs(100)]);
    assert_eq!(history(&response).stop_reason(), StopReason::Deadline);
}

#[tokio::test(start_paused = true)]
async fn server_errors_loop_with_header_keys_guards_a_create_with_one_key() {
    // For the day the server deduplicates by `Idempotency-Key`.
    let keyed = || recipes::server_errors_with_429_pause().inject_idempotency_keys();
    let script = Script::new([
        Step::Fail(io::ErrorKind::ConnectionReset),
        status(502),
        status(201),
    ]);
    let response = run(keyed(), &script, request(Method::POST)).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let keys: Vec<_> = script
        .calls()
        .into_iter()
        .map(|c| c.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    assert_eq!(history(&response).idempotency_key(), Some(&keys[0]));

    // A key the caller chose (to find the job again) is the one sent every time.
    let script = Script::new([status(503), status(201)]);
    let mut create = request(Method::POST);
    create
        .headers_mut()
        .insert("idempotency-key", HeaderValue::from_static("job-42"));
    run(keyed(), &script, create).await.unwrap();
    for call in script.calls() {
        assert_eq!(call.headers["idempotency-key"], "job-42");
    }
}

#[tokio::test(start_paused = true)]
async fn server_errors_loop_never_resends_a_create_that_may_have_run() {
    for first in [
        status(502),
        Step::Fail(io::ErrorKind::ConnectionReset),
        Step::Fail(io::ErrorKind::TimedOut),
    ] {
        let policy = recipes::server_errors_with_429_pause();
        assert_eq!(
            calls_after(policy, Method::POST, first.clone()).await,
            1,
            "{first:?}"
        );
    }
    let refused = Step::Fail(io::ErrorKind::ConnectionRefused);
    let policy = recipes::server_errors_with_429_pause();
    assert_eq!(calls_after(policy, Method::POST, refused).await, 2);
}

// ---- transcriptions: look for the job before re-sending a create ----

fn create() -> Request<Full<Bytes>> {
    recipes::create_transcription("http://api.test", "https://files.test/a.wav")
}

/// Exact waits for the timing assertions: 1 s between attempts, no jitter.
fn exact(mut request: Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let pause = Backoff::constant(secs(1)).jitter(Jitter::None);
    request
        .extensions_mut()
        .insert(CallSettings::new().backoff(pause));
    request
}

#[tokio::test(start_paused = true)]
async fn transcriptions_return_the_job_a_timed_out_create_made_instead_of_a_second_one() {
    for fault in [
        Create::AcceptThenHang,
        Create::AcceptThenReset,
        Create::AcceptThen503,
    ] {
        let api = JobsApi::new([fault]);
        let started = Instant::now();
        let response = recipes::transcriptions(api.clone())
            .oneshot(exact(create()))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{fault:?}");
        assert_eq!(api.jobs().len(), 1, "{fault:?}: one job, no duplicate");
        assert_eq!(api.counts(), (1, 1), "{fault:?}: one create, one listing");
        let timeout = if fault == Create::AcceptThenHang {
            secs(30)
        } else {
            secs(0)
        };
        assert_eq!(
            started.elapsed(),
            timeout + secs(1),
            "{fault:?}: checked after the wait"
        );

        let history = history(&response);
        assert_eq!(history.stop_reason(), StopReason::CheckAnswered);
        assert_eq!(
            history.attempt_count(),
            1,
            "the check's requests are not attempts"
        );
        let check = &history.checks()[0];
        assert_eq!(check.after_attempt, 1);
        let ok = AttemptOutcome::Status(StatusCode::OK);
        assert_eq!(check.requests, [ok, ok], "the listing, then the job");
        assert_eq!(check.answer, CheckAnswer::Respond(StatusCode::OK));
        let job = response.into_body().collect().await.unwrap().to_bytes();
        assert!(job.starts_with(br#"{"id":"tr_1""#), "{job:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn transcriptions_resend_a_create_whose_job_is_not_there() {
    let api = JobsApi::new([Create::ResetBefore, Create::ResetBefore, Create::Accept]);
    let started = Instant::now();
    let response = recipes::transcriptions(api.clone())
        .oneshot(exact(create()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(api.jobs().len(), 1);
    assert_eq!(api.counts(), (3, 2));
    assert_eq!(started.elapsed(), secs(2));
    let history = history(&response);
    assert_eq!(history.attempt_count(), 3);
    let answers: Vec<_> = history.checks().iter().map(|c| c.answer).collect();
    assert_eq!(answers, [CheckAnswer::Retry, CheckAnswer::Retry]);
}

#[tokio::test(start_paused = true)]
async fn transcriptions_never_resend_a_create_they_cannot_look_for() {
    // No key in the body: nothing to look for, so the 503 is returned and the job is not duplicated.
    let api = JobsApi::new([Create::AcceptThen503]);
    let request = Request::post("http://api.test/v1/transcriptions")
        .body(Full::new(Bytes::from_static(
            br#"{"url":"https://files.test/a.wav"}"#,
        )))
        .unwrap();
    let response = recipes::transcriptions(api.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(api.jobs().len(), 1);
    assert_eq!(api.counts(), (1, 0));
    assert_eq!(history(&response).stop_reason(), StopReason::CheckStopped);
}

#[tokio::test(start_paused = true)]
async fn transcriptions_never_duplicate_a_job_under_any_mix_of_faults() {
    use Create::*;
    let faults = [
        AcceptThenHang,
        ResetBefore,
        AcceptThenReset,
        Accept,
        AcceptThen503,
        ResetBefore,
    ];
    let api = JobsApi::new(faults.into_iter().cycle().take(60));
    let client = recipes::transcriptions(api.clone());
    for n in 0..30 {
        let response = client.clone().oneshot(create()).await;
        let status = response.map(|r| r.status());
        assert!(
            matches!(status, Ok(StatusCode::OK | StatusCode::CREATED)),
            "create {n}: {status:?}"
        );
    }
    let jobs = api.jobs();
    let mut keys: Vec<_> = jobs.iter().map(|j| j.key.clone().unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), jobs.len(), "no key has two jobs");
    assert_eq!(jobs.len(), 30);
}

// ---- memory_ingest ----

#[tokio::test(start_paused = true)]
async fn memory_ingest_retries_a_reset_create_while_inside_its_window() {
    let reset = Step::Fail(io::ErrorKind::ConnectionReset);
    let script = Script::new([reset.clone(), reset.clone(), reset, status(201)]);
    let response = run(recipes::memory_ingest(), &script, request(Method::POST))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(script.call_times(), [secs(0), secs(1), secs(3), secs(7)]);
}

#[tokio::test(start_paused = true)]
async fn memory_ingest_does_not_resend_once_the_retry_would_leave_after_60_s() {
    // Timed out at 30 s: retried at 31 s. Timed out again at 61 s: outside the window, returned.
    let script = Script::new([Step::Hang]);
    let started = Instant::now();
    let error = run(recipes::memory_ingest(), &script, request(Method::POST))
        .await
        .unwrap_err();
    assert!(error.is_attempt_timeout());
    assert_eq!(started.elapsed(), secs(61));
    assert_eq!(script.call_times(), [secs(0), secs(31)]);
    assert_eq!(error.history().stop_reason(), StopReason::NotIdempotent);

    // The edge: a 503 56 s into the call is retried (56 + the longest delay of 4 s = 60); at 57 s, not.
    let script = Script::new([Step::Hang, Step::Slow(secs(25), 503), status(201)]);
    let response = run(recipes::memory_ingest(), &script, request(Method::POST)).await;
    assert_eq!(response.unwrap().status(), StatusCode::CREATED);
    assert_eq!(script.call_times(), [secs(0), secs(31), secs(58)]);
    let script = Script::new([Step::Hang, Step::Slow(secs(26), 503), status(201)]);
    let response = run(recipes::memory_ingest(), &script, request(Method::POST)).await;
    assert_eq!(response.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(script.call_times(), [secs(0), secs(31)]);
}

#[tokio::test(start_paused = true)]
async fn memory_ingest_retries_429_as_the_sdk_does_and_reads_anywhere() {
    let script = Script::new([
        status(429),
        with_header(429, "retry-after", "5"),
        status(200),
    ]);
    let response = run(recipes::memory_ingest(), &script, request(Method::POST))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(script.call_times(), [secs(0), secs(1), secs(6)]);
    // A search is read-only: retried after a 503 at any age of the call.
    let script = Script::new([Step::Hang, Step::Slow(secs(29), 503), status(200)]);
    let response = run(recipes::memory_ingest(), &script, request(Method::GET)).await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);
    assert_eq!(script.call_times(), [secs(0), secs(31), secs(62)]);
}

// ---- webhook_schedule ----

#[tokio::test(start_paused = true)]
async fn webhook_schedule_retries_after_1_5_30_120_and_720_minutes() {
    let script = Script::new([status(500)]);
    let response = run(recipes::webhook_schedule(), &script, request(Method::POST))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        script.call_times(),
        [
            minutes(0),
            minutes(1),
            minutes(6),
            minutes(36),
            minutes(156),
            minutes(876)
        ]
    );
    assert_eq!(
        history(&response).stop_reason(),
        StopReason::AttemptsExhausted
    );
}

#[tokio::test(start_paused = true)]
async fn webhook_schedule_retries_anything_but_a_2xx() {
    // A 400, a redirect, a reset and a receiver that never answers (30 s), then delivered.
    let script = Script::new([
        status(400),
        status(301),
        Step::Fail(io::ErrorKind::ConnectionReset),
        Step::Hang,
        status(204),
    ]);
    let response = run(recipes::webhook_schedule(), &script, request(Method::POST))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        script.call_times(),
        [
            minutes(0),
            minutes(1),
            minutes(6),
            minutes(36),
            minutes(156) + secs(30)
        ]
    );

    // A receiver's Retry-After longer than the next delay is waited for.
    let script = Script::new([with_header(503, "retry-after", 3600), status(204)]);
    run(recipes::webhook_schedule(), &script, request(Method::POST))
        .await
        .unwrap();
    assert_eq!(script.call_times(), [minutes(0), minutes(60)]);
}

#[tokio::test(start_paused = true)]
async fn webhook_schedule_gives_every_delivery_its_retries_when_many_fail() {
    let layer = RetryLayer::new(recipes::webhook_schedule());
    let deliveries: Vec<_> = (0..50)
        .map(|_| {
            let script = Script::new([status(503)]);
            let delivery = layer.layer(script.clone()).oneshot(request(Method::POST));
            (script, tokio::spawn(delivery))
        })
        .collect();
    for (script, delivery) in deliveries {
        delivery.await.unwrap().unwrap();
        assert_eq!(script.calls().len(), 6);
    }
}

// ---- streaming ----

/// What a scripted response body yields next.
#[derive(Clone, Debug)]
enum Chunk {
    Data(&'static str),
    Fail(io::ErrorKind),
    /// Never yields.
    Stall,
}

/// A response body yielding scripted chunks.
struct Chunks(VecDeque<Chunk>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.0.pop_front() {
            None => Poll::Ready(None),
            Some(Chunk::Data(text)) => Poll::Ready(Some(Ok(Frame::data(Bytes::from(text))))),
            Some(Chunk::Fail(kind)) => Poll::Ready(Some(Err(io::Error::new(kind, "scripted")))),
            Some(Chunk::Stall) => {
                self.0.push_front(Chunk::Stall);
                Poll::Pending
            }
        }
    }
}

/// When each call was made.
type CallLog = Arc<Mutex<Vec<Instant>>>;

/// An in-memory streaming server: the n-th call answers 200 with the n-th body (the last repeats);
/// returns the service and the instants of its calls.
fn streaming_server(
    bodies: Vec<Vec<Chunk>>,
) -> (
    impl tower::Service<Request<Full<Bytes>>, Response = Response<Chunks>, Error = io::Error> + Clone,
    CallLog,
) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let log = calls.clone();
    let service = service_fn(move |_: Request<Full<Bytes>>| {
        let mut calls = log.lock().unwrap();
        let body = bodies[calls.len().min(bodies.len() - 1)].clone();
        calls.push(Instant::now());
        async move { Ok(Response::new(Chunks(body.into()))) }
    });
    (service, calls)
}

#[tokio::test(start_paused = true)]
async fn streaming_retries_a_body_that_breaks_before_its_first_byte() {
    let (server, calls) = streaming_server(vec![
        vec![Chunk::Fail(io::ErrorKind::ConnectionReset)],
        vec![Chunk::Data("audio"), Chunk::Data(" rest")],
    ]);
    let response = recipes::streaming(server)
        .oneshot(request(Method::GET))
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "audio rest");
    assert_eq!(calls.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn streaming_hands_over_a_body_that_breaks_after_its_first_byte() {
    let (server, calls) = streaming_server(vec![
        vec![
            Chunk::Data("first words"),
            Chunk::Fail(io::ErrorKind::ConnectionReset),
        ],
        vec![Chunk::Data("audio")],
    ]);
    let response = recipes::streaming(server)
        .oneshot(request(Method::GET))
        .await
        .unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first words");
    assert!(
        body.frame().await.unwrap().is_err(),
        "the break is the caller's"
    );
    assert_eq!(calls.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn streaming_retries_a_first_byte_that_does_not_come_within_10_s() {
    let (server, calls) = streaming_server(vec![vec![Chunk::Stall], vec![Chunk::Data("audio")]]);
    let started = Instant::now();
    let response = recipes::streaming(server)
        .oneshot(request(Method::GET))
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "audio");
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 2);
    let retried_after = calls[1] - started;
    assert!(
        retried_after >= secs(10) && retried_after <= secs(10) + ms(300),
        "{retried_after:?}"
    );
}

// ---- memory_client ----

#[tokio::test(start_paused = true)]
async fn memory_client_times_out_a_body_still_being_read_at_30_s() {
    let (server, _) = streaming_server(vec![vec![Chunk::Data("events"), Chunk::Stall]]);
    let started = Instant::now();
    let response = recipes::memory_client(server, secs(30))
        .oneshot(request(Method::GET))
        .await
        .unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "events");
    let error = body.frame().await.unwrap().unwrap_err();
    assert!(error.is::<CallTimedOut>(), "{error}");
    assert_eq!(started.elapsed(), secs(30));
    assert!(body.frame().await.is_none(), "ended after the timeout");
}

#[tokio::test(start_paused = true)]
async fn memory_client_bounds_attempts_and_waits_by_the_same_timeout() {
    let script = Script::new([status(429)]);
    let started = Instant::now();
    // 429s at 0, 1, 3 s; the next wait (4 s) would end past the 5 s timeout.
    let response = recipes::memory_client(script.clone(), secs(5))
        .oneshot(request(Method::GET))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(script.call_times(), [secs(0), secs(1), secs(3)]);
    assert!(started.elapsed() <= secs(5));

    let script = Script::new([Step::Hang]);
    let error = recipes::memory_client(script.clone(), secs(20))
        .oneshot(request(Method::GET))
        .await
        .unwrap_err();
    assert!(error.is_deadline(), "{error}");
    assert_eq!(started.elapsed(), secs(23));
}

#[tokio::test(start_paused = true)]
async fn memory_client_takes_a_shorter_per_call_deadline_never_a_longer_one() {
    for (own, ends) in [(secs(5), secs(5)), (secs(60), secs(30))] {
        let (server, _) = streaming_server(vec![vec![Chunk::Stall]]);
        let mut request = request(Method::GET);
        request
            .extensions_mut()
            .insert(CallSettings::new().deadline(own));
        let started = Instant::now();
        let response = recipes::memory_client(server, secs(30))
            .oneshot(request)
            .await
            .unwrap();
        let error = response.into_body().collect().await.unwrap_err();
        assert!(error.is::<CallTimedOut>());
        assert_eq!(started.elapsed(), ends);
    }
}

// ---- transcriptions over real sockets ----

// ---- json_errors ----

#[tokio::test(start_paused = true)]
async fn json_errors_retries_an_overloaded_error_in_a_200() {
    let script = Script::new([
        with_body(200, r#"{"error": "overloaded"}"#),
        with_body(200, r#"{"id": 7}"#),
    ]);
    let response = run(recipes::json_errors(), &script, request(Method::GET))
        .await
        .unwrap();

    assert_eq!(script.calls().len(), 2);
    let first = history(&response).attempts()[0].clone();
    assert_eq!(first.outcome, AttemptOutcome::Status(StatusCode::OK));
    assert_eq!(
        first.decision,
        tower_http_retry::classify::Decision::Retry(
            tower_http_retry::classify::RetryClass::Throttling
        )
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, r#"{"id": 7}"#);
}

#[tokio::test(start_paused = true)]
async fn json_errors_fails_at_once_on_a_body_that_is_not_json() {
    for status in [200, 400, 502, 503] {
        let script = Script::new([
            with_body(status, "<html>Bad Gateway</html>"),
            self::status(200),
        ]);
        let response = run(recipes::json_errors(), &script, request(Method::GET))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(script.calls().len(), 1, "{status}: never retried");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "<html>Bad Gateway</html>", "the caller gets the body");
    }
}

#[tokio::test(start_paused = true)]
async fn json_errors_leaves_empty_bodies_and_other_json_to_the_table() {
    // An empty 503 is retried as the table says; a JSON 400 of another error is final.
    let script = Script::new([status(503), with_body(200, r#"{"id": 7}"#)]);
    let response = run(recipes::json_errors(), &script, request(Method::GET))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(script.calls().len(), 2);

    let script = Script::new([with_body(400, r#"{"error": "bad_request"}"#)]);
    let response = run(recipes::json_errors(), &script, request(Method::GET))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(script.calls().len(), 1);
}

#[tokio::test]
async fn transcriptions_over_real_sockets_never_duplicate_a_job() {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use Create::*;

    // Each fault happens after the server created the job, except `ResetBefore`.
    let faults = [
        AcceptThenHang,
        AcceptThenReset,
        AcceptThen503,
        ResetBefore,
        Accept,
    ];
    let api = JobsApi::new(faults);
    let base = format!("http://{}", api.serve().await);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let service = recipes::transcriptions(client);
    for fault in faults {
        let mut request = recipes::create_transcription(&base, "https://files.test/a.wav");
        // Real time: short timeouts and waits for this call only.
        let quick = CallSettings::new()
            .attempt_timeout(ms(100))
            .backoff(Backoff::constant(ms(10)).jitter(Jitter::None));
        request.extensions_mut().insert(quick);
        let response = service.clone().oneshot(request).await.unwrap();
        let history = response.extensions().get::<RetryHistory>();
        let answer = history.and_then(|h| h.checks().first()).map(|c| c.answer);
        let expected = match fault {
            Accept => (StatusCode::CREATED, None),
            ResetBefore => (StatusCode::CREATED, Some(CheckAnswer::Retry)),
            _ => (StatusCode::OK, Some(CheckAnswer::Respond(StatusCode::OK))),
        };
        assert_eq!((response.status(), answer), expected, "{fault:?}");
    }
    let jobs = api.jobs();
    let mut keys: Vec<_> = jobs.iter().map(|j| j.key.clone().unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        (jobs.len(), keys.len()),
        (5, 5),
        "one job per create, none twice"
    );
}
