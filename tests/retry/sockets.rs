//! Integration tests against a real hyper server on 127.0.0.1, through hyper-util's client.
//!
//! Real sockets keep real time, so waits here are a few milliseconds; exact timing is tested with a
//! paused clock in `timing.rs`.

use crate::durations::ms;
use crate::history::history;
use crate::server;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use server::{Reply, Server};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::body::ResponseBody;
use tower_http_retry::classify::{Decision, ErrorKind, RetryClass};
use tower_http_retry::history::{AttemptOutcome, StopReason, WaitReason};
use tower_http_retry::{Retry, RetryHistory, RetryLayer, RetryPolicy};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Retries quickly, so tests over real sockets stay fast.
fn quick() -> RetryPolicy {
    RetryPolicy::default().backoff(Backoff::constant(ms(5)).jitter(Jitter::None))
}

fn client(policy: RetryPolicy) -> Retry<HttpClient> {
    let client = Client::builder(TokioExecutor::new()).build_http();
    ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(client)
}

/// Sends one request with a small payload through a retry layer with `policy`.
async fn send(
    policy: RetryPolicy,
    method: Method,
    url: &str,
) -> Result<http::Response<ResponseBody<hyper::body::Incoming>>, tower_http_retry::Error> {
    client(policy).oneshot(request(method, url)).await
}

fn request(method: Method, url: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap()
}

fn outcomes(history: &RetryHistory) -> Vec<AttemptOutcome> {
    history.attempts().iter().map(|a| a.outcome).collect()
}

fn status(code: u16) -> AttemptOutcome {
    AttemptOutcome::Status(StatusCode::from_u16(code).unwrap())
}

#[tokio::test]
async fn unavailable_twice_then_ok_takes_three_attempts() {
    let server = Server::start([(
        "/",
        vec![Reply::status(503), Reply::status(503), Reply::status(200)],
    )])
    .await;
    let response = send(quick(), Method::GET, &server.url("/")).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let history = history(&response);
    assert_eq!(outcomes(history), [status(503), status(503), status(200)]);
    assert_eq!(history.stop_reason(), StopReason::Finished);
    assert_eq!(
        history.attempts()[0].decision,
        Decision::Retry(RetryClass::Transient)
    );
    assert_eq!(
        history.attempts()[0].wait.unwrap().reason,
        WaitReason::Backoff
    );
    assert_eq!(history.attempts()[2].wait, None);
    assert_eq!(RetryHistory::resend_count(response.extensions()), 2);
    assert_eq!(server.hits("/"), 3);
}

#[tokio::test]
async fn bad_request_is_not_retried() {
    let server = Server::start([("/", vec![Reply::status(400), Reply::status(200)])]).await;
    let response = send(quick(), Method::GET, &server.url("/")).await.unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response.extensions().get::<RetryHistory>().is_none(),
        "a final first answer passes through untouched"
    );
    assert_eq!(server.hits("/"), 1);
}

#[tokio::test]
async fn post_on_500_is_not_retried() {
    let server = Server::start([("/charge", vec![Reply::status(500), Reply::status(200)])]).await;
    let response = send(quick(), Method::POST, &server.url("/charge"))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let history = history(&response);
    assert_eq!(outcomes(history), [status(500)]);
    assert_eq!(history.attempts()[0].decision, Decision::Unsafe);
    assert_eq!(history.stop_reason(), StopReason::NotIdempotent);
    assert_eq!(server.hits("/charge"), 1);
}

#[tokio::test]
async fn post_with_an_idempotency_key_on_503_is_retried() {
    let server = Server::start([("/charge", vec![Reply::status(503), Reply::status(201)])]).await;
    let mut req = request(Method::POST, &server.url("/charge"));
    req.headers_mut()
        .insert("idempotency-key", "order-42".parse().unwrap());
    let response = client(quick()).oneshot(req).await.unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    let received = server.received();
    assert_eq!(received.len(), 2);
    for r in &received {
        assert_eq!(r.headers["idempotency-key"], "order-42");
        assert_eq!(
            r.body,
            Bytes::from_static(b"payload"),
            "the body is sent whole every time"
        );
    }
}

#[tokio::test]
async fn post_on_connection_refused_is_retried() {
    // A port that refuses connections until the server comes up on it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}/orders");
    let later = tokio::spawn(async move {
        tokio::time::sleep(ms(30)).await;
        Server::start_on(addr, [("/orders", vec![Reply::status(201)])]).await
    });
    let policy = RetryPolicy::default()
        .backoff(Backoff::constant(ms(60)).jitter(Jitter::None))
        .max_attempts(4);
    let response = client(policy)
        .oneshot(request(Method::POST, &url))
        .await
        .unwrap();
    let server = later.await.unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    let history = history(&response);
    assert_eq!(
        outcomes(history),
        [AttemptOutcome::Error(ErrorKind::Connect), status(201)]
    );
    assert_eq!(server.hits("/orders"), 1, "the POST was executed once");
}

#[tokio::test]
async fn connection_refused_until_the_limit_is_a_typed_error() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let error = client(quick().max_attempts(3))
        .oneshot(request(Method::POST, &format!("http://{addr}/")))
        .await
        .unwrap_err();

    assert!(error.is_attempts_exhausted());
    assert!(!error.is_deadline());
    assert_eq!(error.kind(), Some(ErrorKind::Connect));
    assert_eq!(error.history().attempt_count(), 3);
    let inner = error.inner().expect("the last attempt's error");
    assert!(inner
        .downcast_ref::<hyper_util::client::legacy::Error>()
        .is_some_and(|e| e.is_connect()));
}

#[tokio::test]
async fn get_on_a_reset_is_retried() {
    let server = Server::start([("/", vec![Reply::Reset, Reply::status(200)])]).await;
    let response = send(quick(), Method::GET, &server.url("/")).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let history = history(&response);
    let first = history.attempts()[0].outcome;
    assert!(
        matches!(first, AttemptOutcome::Error(kind) if !kind.is_never_sent() && kind != ErrorKind::Other),
        "a reset after sending is a maybe-sent failure, got {first:?}"
    );
    assert_eq!(history.attempt_count(), 2);
    assert_eq!(server.hits("/"), 2);
}

#[tokio::test]
async fn post_on_a_reset_is_not_retried() {
    let server = Server::start([("/", vec![Reply::Reset, Reply::status(200)])]).await;
    let error = send(quick(), Method::POST, &server.url("/"))
        .await
        .unwrap_err();

    assert_eq!(error.history().stop_reason(), StopReason::NotIdempotent);
    assert_eq!(error.history().attempts()[0].decision, Decision::Unsafe);
    assert_eq!(
        server.hits("/"),
        1,
        "the server may have acted on it: sent once"
    );
}

#[tokio::test]
async fn retry_after_above_the_cap_is_returned_at_once() {
    let server = Server::start([(
        "/",
        vec![
            Reply::status(503).header("retry-after", "120"),
            Reply::status(200),
        ],
    )])
    .await;
    let policy = quick().max_retry_after(Duration::from_secs(60));
    let started = std::time::Instant::now();
    let response = send(policy, Method::GET, &server.url("/")).await.unwrap();

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(5), "not slept on");
    let history = history(&response);
    assert_eq!(history.stop_reason(), StopReason::RetryAfterTooLong);
    assert_eq!(history.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(server.hits("/"), 1);
}

#[tokio::test]
async fn throttled_requests_are_retried_for_any_method() {
    let server = Server::start([(
        "/",
        vec![
            Reply::status(429).header("retry-after", "0"),
            Reply::status(200),
        ],
    )])
    .await;
    let response = send(quick(), Method::POST, &server.url("/")).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let history = history(&response);
    assert_eq!(
        history.attempts()[0].decision,
        Decision::Retry(RetryClass::Throttling)
    );
    assert_eq!(history.attempts()[0].retry_after, Some(Duration::ZERO));
}

/// A failure body larger than hyper drains by itself when a body is dropped (what one read returns).
const ERROR_PAGE: usize = 1024 * 1024;

/// Waits 40 ms between attempts (draining runs during the wait) and drains up to `limit` bytes.
fn draining(limit: u64) -> RetryPolicy {
    RetryPolicy::default()
        .backoff(Backoff::constant(ms(40)).jitter(Jitter::None))
        .drain_limit(limit)
}

async fn connections_used_for_a_retry_after(error_page: usize, policy: RetryPolicy) -> usize {
    let failure = Reply::status(503).body(Bytes::from(vec![b'x'; error_page]));
    let server = Server::start([("/", vec![failure, Reply::status(200)])]).await;
    let response = send(policy, Method::GET, &server.url("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.hits("/"), 2);
    server.connections()
}

#[tokio::test]
async fn a_drained_failure_keeps_the_connection_for_the_retry() {
    let policy = draining(2 * ERROR_PAGE as u64);
    assert_eq!(
        connections_used_for_a_retry_after(ERROR_PAGE, policy).await,
        1
    );
}

#[tokio::test]
async fn a_failure_body_over_the_drain_limit_is_dropped_not_read() {
    let policy = draining(ERROR_PAGE as u64 / 4);
    assert_eq!(
        connections_used_for_a_retry_after(ERROR_PAGE, policy).await,
        2
    );
}

#[tokio::test]
async fn the_retried_response_body_reaches_the_caller_whole() {
    let server = Server::start([(
        "/",
        vec![Reply::status(502), Reply::status(200).body("the answer")],
    )])
    .await;
    let response = send(quick(), Method::GET, &server.url("/")).await.unwrap();

    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, Bytes::from_static(b"the answer"));
}

#[tokio::test]
async fn an_endless_failure_stops_at_the_attempt_limit() {
    let server = Server::start([("/", vec![Reply::status(503)])]).await;
    let response = send(quick().max_attempts(5), Method::GET, &server.url("/"))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let history = history(&response);
    assert_eq!(history.attempt_count(), 5);
    assert_eq!(history.stop_reason(), StopReason::AttemptsExhausted);
    assert_eq!(server.hits("/"), 5);
}

#[tokio::test]
async fn one_retry_service_serves_concurrent_calls() {
    let server = Server::start([("/", vec![Reply::status(503), Reply::status(200)])]).await;
    let mut service = client(quick());
    let mut calls = Vec::new();
    for _ in 0..8 {
        let call = service
            .ready()
            .await
            .unwrap()
            .call(request(Method::GET, &server.url("/")));
        calls.push(tokio::spawn(call));
    }
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!(server.hits("/"), 9, "one 503, then every call gets a 200");
}

#[test]
fn the_service_and_its_future_are_send_sync_and_clone() {
    fn clone_send_sync<T: Clone + Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    clone_send_sync::<Retry<HttpClient>>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let future = client(quick()).call(request(Method::GET, "http://127.0.0.1:9/"));
    send(&future);
}
