//! reqwest: a real `reqwest::Client` behind the retry layer, against the scripted hyper server on
//! 127.0.0.1.

#![cfg(feature = "reqwest")]

use retry_test_support::{durations, server};

use durations::ms;
use std::convert::Infallible;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use server::{Reply, Server};
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::body::ReplayBodyLayer;
use tower_http_retry::classify::ErrorKind;
use tower_http_retry::history::{AttemptOutcome, StopReason};
use tower_http_retry::reqwest::ReqwestService;
use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};

fn quick() -> RetryPolicy {
    RetryPolicy::default()
        .no_retry_budget()
        .backoff(Backoff::constant(ms(5)).jitter(Jitter::None))
}

/// The layer over reqwest, in the one line the README shows.
fn client(
    reqwest: reqwest::Client,
    policy: RetryPolicy,
) -> tower_http_retry::Retry<ReqwestService> {
    ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(ReqwestService::new(reqwest))
}

fn outcomes(history: &RetryHistory) -> Vec<AttemptOutcome> {
    history.attempts().iter().map(|a| a.outcome).collect()
}

#[tokio::test]
async fn a_put_is_retried_with_its_buffered_body_sent_whole_each_time() {
    let server = Server::start([(
        "/files/7",
        vec![
            Reply::status(503),
            Reply::status(502),
            Reply::status(200).body("stored"),
        ],
    )])
    .await;
    let request = Request::put(server.url("/files/7"))
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap();
    let response = client(reqwest::Client::new(), quick())
        .oneshot(request)
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let history = response.extensions().get::<RetryHistory>().unwrap().clone();
    assert_eq!(history.attempt_count(), 3);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "stored");
    let received = server.received();
    assert_eq!(received.len(), 3);
    for r in received {
        assert_eq!(r.body, "payload");
        assert_eq!(r.headers["content-length"], "7");
    }
}

#[tokio::test]
async fn a_buffered_reqwest_body_is_replayed() {
    let server = Server::start([("/", vec![Reply::status(503), Reply::status(200)])]).await;
    let request = Request::put(server.url("/"))
        .body(reqwest::Body::from("{\"amount\": 100}"))
        .unwrap();
    let response = client(reqwest::Client::new(), quick())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bodies: Vec<_> = server.received().into_iter().map(|r| r.body).collect();
    assert_eq!(
        bodies,
        [&b"{\"amount\": 100}"[..], &b"{\"amount\": 100}"[..]]
    );
}

#[tokio::test]
async fn a_streamed_body_is_replayed_through_the_replay_layer() {
    let server = Server::start([("/upload", vec![Reply::status(503), Reply::status(200)])]).await;
    let client = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new())
        .layer(RetryLayer::new(quick()))
        .service(ReqwestService::new(reqwest::Client::new()));
    // A boxed body, read once: not replayable by itself.
    let upload: BoxBody<Bytes, Infallible> =
        Full::new(Bytes::from_static(b"part one, part two, part three")).boxed();
    let request = Request::put(server.url("/upload")).body(upload).unwrap();

    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bodies: Vec<_> = server.received().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, ["part one, part two, part three"; 2]);
}

#[tokio::test]
async fn reqwests_own_timeout_is_retried_for_a_get_and_not_for_a_post() {
    let slow_then_fast = || vec![Reply::status(200).after(ms(1000)), Reply::status(200)];
    let server = Server::start([("/get", slow_then_fast()), ("/post", slow_then_fast())]).await;
    let reqwest = reqwest::Client::builder().timeout(ms(100)).build().unwrap();

    let get = Request::get(server.url("/get"))
        .body(String::new())
        .unwrap();
    let response = client(reqwest.clone(), quick()).oneshot(get).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let history = response.extensions().get::<RetryHistory>().unwrap();
    assert_eq!(
        outcomes(history),
        [
            AttemptOutcome::Error(ErrorKind::AttemptTimeout),
            AttemptOutcome::Status(StatusCode::OK)
        ]
    );

    let post = Request::post(server.url("/post"))
        .body(String::new())
        .unwrap();
    let error = client(reqwest, quick()).oneshot(post).await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::AttemptTimeout));
    assert_eq!(error.history().stop_reason(), StopReason::NotIdempotent);
    assert_eq!(
        server.hits("/post"),
        1,
        "the POST may have been acted on: sent once"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error_retried_even_for_a_post() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}/orders"))
        .body(String::from("{}"))
        .unwrap();
    let error = client(reqwest::Client::new(), quick().max_attempts(3))
        .oneshot(request)
        .await
        .unwrap_err();

    assert_eq!(error.kind(), Some(ErrorKind::Connect));
    assert!(error.is_attempts_exhausted());
    assert_eq!(error.history().attempt_count(), 3);
    let inner = error.inner().unwrap();
    assert!(inner
        .downcast_ref::<reqwest::Error>()
        .is_some_and(|e| e.is_connect()));
}

#[tokio::test]
async fn a_request_reqwest_cannot_build_is_not_retried() {
    // A URI without a scheme parses for http but not for reqwest's Url.
    let request = Request::get("/relative").body(String::new()).unwrap();
    let error = client(reqwest::Client::new(), quick())
        .oneshot(request)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::Other));
    assert_eq!(error.history().attempt_count(), 1);
}

#[tokio::test]
async fn reqwests_own_timeout_is_an_attempt_timeout() {
    let server = Server::start([("/silent", vec![Reply::Hang, Reply::Hang])]).await;
    let reqwest = reqwest::Client::builder().timeout(ms(50)).build().unwrap();
    let get = Request::get(server.url("/silent"))
        .body(String::new())
        .unwrap();
    let error = client(reqwest, quick().max_attempts(2))
        .oneshot(get)
        .await
        .unwrap_err();

    assert!(error.is_attempt_timeout(), "{error:?}");
    assert_eq!(error.kind(), Some(ErrorKind::AttemptTimeout));
    assert!(error.is_attempts_exhausted());
    assert_eq!(server.hits("/silent"), 2, "a timed-out GET is retried");
    let cause = error.inner().unwrap();
    assert!(cause
        .downcast_ref::<reqwest::Error>()
        .is_some_and(|e| e.is_timeout()));
}

#[tokio::test]
async fn an_errors_display_says_why_the_last_attempt_failed() {
    let server = Server::start([("/silent", vec![Reply::Hang])]).await;
    let reqwest = reqwest::Client::builder().timeout(ms(50)).build().unwrap();
    let get = Request::get(server.url("/silent"))
        .body(String::new())
        .unwrap();
    let error = client(reqwest, quick().max_attempts(1))
        .oneshot(get)
        .await
        .unwrap_err();

    let cause = std::error::Error::source(&error)
        .expect("the source is kept")
        .to_string();
    assert_eq!(cause, error.inner().unwrap().to_string());
    let line = error.to_string();
    assert!(line.starts_with("request failed ("), "{line}");
    assert!(line.ends_with(&format!("): {cause}")), "{line}");
}

#[tokio::test]
async fn a_get_whose_body_resets_while_read_is_sent_again_when_bodies_are_buffered() {
    let whole: Bytes = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let server = Server::start([(
        "/files/7",
        vec![
            Reply::Truncated {
                length: 1000,
                prefix: whole.slice(..10),
            },
            Reply::status(200).body(whole.clone()),
        ],
    )])
    .await;
    let policy = quick().buffer_responses(64 * 1024);
    let request = Request::get(server.url("/files/7"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client(reqwest::Client::new(), policy)
        .oneshot(request)
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let history = response.extensions().get::<RetryHistory>().unwrap().clone();
    assert_eq!(history.attempt_count(), 2);
    assert!(matches!(
        history.attempts()[0].outcome,
        AttemptOutcome::Error(kind) if !kind.is_never_sent() && kind != ErrorKind::Other
    ));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, whole);
    assert_eq!(server.hits("/files/7"), 2);
}

#[tokio::test]
async fn a_post_whose_body_resets_while_read_is_sent_once_when_bodies_are_buffered() {
    let server = Server::start([(
        "/orders",
        vec![
            Reply::Truncated {
                length: 1000,
                prefix: Bytes::from_static(b"0123456789"),
            },
            Reply::status(200),
        ],
    )])
    .await;
    let policy = quick().buffer_responses(64 * 1024);
    let request = Request::post(server.url("/orders"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let error = client(reqwest::Client::new(), policy)
        .oneshot(request)
        .await
        .unwrap_err();

    assert_eq!(error.history().stop_reason(), StopReason::NotIdempotent);
    assert_eq!(server.hits("/orders"), 1);
}
