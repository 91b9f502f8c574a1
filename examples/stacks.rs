//! The stacks users build around the retry layer, each run against an embedded scripted server.
//!
//! `cargo run --example stacks` prints, for each stack, what it does and what happened; it exits 1 if a
//! stack behaves differently from what its comment says.
//!
//! Which order is right:
//! - `TimeoutLayer` *inside* the retry bounds each attempt (its timeout is retried for idempotent
//!   requests); *outside*, it bounds the whole call, waits included.
//! - `RateLimitLayer` *inside* the retry counts every attempt, retries included, against the limit: that
//!   is what the server counts, so it belongs inside. The retry waits for `poll_ready`, so a retry never
//!   jumps the limit. It is not `Clone`, and the retry clones its inner service: put a `Buffer` between.
//! - `ConcurrencyLimitLayer` inside the retry holds a permit per attempt, released during the wait;
//!   outside, a permit per call, held through the waits.
//! - `Buffer` *outside* the retry shares one client (and one retry policy) between many tasks.
//! - `FirstByteLayer` *inside* the retry, so a streamed response that breaks before its first byte is
//!   retried (`examples/recipes.rs`, `streaming`); `ReplayBodyLayer` *outside*, so the retry gets a body
//!   it can send again (`examples/axum_proxy.rs`).

use retry_test_support::{checks, server};

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use checks::Checks;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use server::{Reply, Server};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn get(url: &str) -> Request<Full<Bytes>> {
    Request::get(url).body(Full::default()).unwrap()
}

fn policy() -> RetryPolicy {
    RetryPolicy::default().backoff(Backoff::constant(ms(20)).jitter(Jitter::None))
}

fn resends<B>(response: &http::Response<B>) -> u32 {
    RetryHistory::resend_count(response.extensions())
}

#[tokio::main]
async fn main() -> ExitCode {
    let server = Server::start([
        (
            "/slow-once",
            vec![Reply::status(200).after(ms(500)), Reply::status(200)],
        ),
        ("/slow", vec![Reply::status(200).after(ms(500))]),
        (
            "/flaky",
            vec![Reply::status(503), Reply::status(503), Reply::status(200)],
        ),
        (
            "/flaky-again",
            vec![Reply::status(503), Reply::status(503), Reply::status(200)],
        ),
        ("/ok", vec![Reply::status(200)]),
    ])
    .await;
    let mut checks = Checks::default();

    println!("1. TimeoutLayer inside the retry: each attempt gets 100 ms, a timed-out attempt is retried");
    let per_attempt = ServiceBuilder::new()
        .layer(RetryLayer::new(policy()))
        .timeout(ms(100))
        .service(client());
    let response = per_attempt.oneshot(get(&server.url("/slow-once"))).await;
    let resent = response.as_ref().map(resends).unwrap_or(0);
    checks.expect(
        response.is_ok_and(|r| r.status() == StatusCode::OK) && resent == 1,
        "200 after one timed-out attempt",
    );

    println!(
        "2. TimeoutLayer outside the retry: 250 ms for the whole call, retries and waits included"
    );
    let whole_call = ServiceBuilder::new()
        .timeout(ms(250))
        .layer(RetryLayer::new(policy()))
        .timeout(ms(100))
        .service(client());
    let started = Instant::now();
    let result = whole_call.oneshot(get(&server.url("/slow"))).await;
    let elapsed = started.elapsed();
    let timed_out = result.is_err_and(|e: BoxError| e.is::<tower::timeout::error::Elapsed>());
    checks.expect(
        timed_out && elapsed < ms(400),
        &format!("the whole call timed out after {elapsed:.0?}"),
    );

    println!(
        "3. RateLimit and ConcurrencyLimit inside the retry: every attempt counts against them"
    );
    // Two requests per 300 ms; a call needing three attempts must wait for the limit to refill.
    let limited = ServiceBuilder::new()
        .layer(RetryLayer::new(policy()))
        .buffer(8)
        .concurrency_limit(4)
        .rate_limit(2, ms(300))
        .service(client());
    let started = Instant::now();
    let response = limited.oneshot(get(&server.url("/flaky"))).await;
    let elapsed = started.elapsed();
    checks.expect(
        response
            .as_ref()
            .is_ok_and(|r| r.status() == StatusCode::OK),
        "200 after three attempts",
    );
    checks.expect(
        elapsed >= ms(300),
        &format!("the third attempt waited for the rate limit: {elapsed:.0?}"),
    );

    println!(
        "3b. RateLimit outside the retry, for contrast: a call counts once, its retries not at all"
    );
    let outside = ServiceBuilder::new()
        .buffer(8)
        .rate_limit(2, ms(300))
        .layer(RetryLayer::new(policy()))
        .service(client());
    let started = Instant::now();
    let response = outside.oneshot(get(&server.url("/flaky-again"))).await;
    let elapsed = started.elapsed();
    checks.expect(
        response.is_ok_and(|r| r.status() == StatusCode::OK)
            && server.hits("/flaky-again") == 3
            && elapsed < ms(300),
        &format!("three attempts went out on one permit of a two-per-300-ms limit: {elapsed:.0?}"),
    );

    println!("4. Buffer outside the retry: one client, one policy, shared by many tasks");
    let shared = ServiceBuilder::new()
        .buffer(64)
        .layer(RetryLayer::new(policy()))
        .service(client());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let mut shared = shared.clone();
            let url = server.url("/ok");
            tokio::spawn(async move { shared.ready().await?.call(get(&url)).await })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        if task
            .await
            .is_ok_and(|r| r.is_ok_and(|r| r.status() == StatusCode::OK))
        {
            ok += 1;
        }
    }
    checks.expect(ok == 16, &format!("{ok} of 16 tasks got 200"));

    if checks.0.is_empty() {
        println!("\nevery stack behaved as described");
        ExitCode::SUCCESS
    } else {
        eprintln!("\nstacks that misbehaved: {:?}", checks.0);
        ExitCode::FAILURE
    }
}
