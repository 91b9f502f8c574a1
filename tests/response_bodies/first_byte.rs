//! A streamed response that breaks before its first byte is retried; one that breaks after is not.
//! Real hyper server on 127.0.0.1.

use crate::server;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use server::{Reply, Server};
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::body::FirstByteLayer;
use tower_http_retry::classify::ErrorKind;
use tower_http_retry::history::AttemptOutcome;
use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};

fn policy() -> RetryPolicy {
    RetryPolicy::default().backoff(Backoff::constant(Duration::from_millis(5)).jitter(Jitter::None))
}

fn request(method: Method, url: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(url)
        .body(Full::default())
        .unwrap()
}

fn breaks_before_first_byte() -> Reply {
    Reply::BodyFails {
        status: 200,
        prefix: Bytes::new(),
    }
}

#[tokio::test]
async fn a_body_that_breaks_before_its_first_byte_is_retried() {
    let server = Server::start([(
        "/speech",
        vec![breaks_before_first_byte(), Reply::status(200).body("audio")],
    )])
    .await;
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(policy()))
        .layer(FirstByteLayer::new())
        .service(Client::builder(TokioExecutor::new()).build_http());

    let response = client
        .oneshot(request(Method::GET, &server.url("/speech")))
        .await
        .unwrap();
    let history = response
        .extensions()
        .get::<RetryHistory>()
        .expect("history")
        .clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();

    assert_eq!(body, Bytes::from_static(b"audio"));
    assert_eq!(server.hits("/speech"), 2);
    let first = history.attempts()[0].outcome;
    assert!(
        matches!(first, AttemptOutcome::Error(kind) if !kind.is_never_sent() && kind != ErrorKind::Other),
        "a body broken mid-stream is a maybe-sent transport failure, got {first:?}"
    );
}

#[tokio::test]
async fn without_the_layer_the_broken_body_reaches_the_caller() {
    let server = Server::start([(
        "/speech",
        vec![breaks_before_first_byte(), Reply::status(200).body("audio")],
    )])
    .await;
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(policy()))
        .service(Client::builder(TokioExecutor::new()).build_http());

    let response = client
        .oneshot(request(Method::GET, &server.url("/speech")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.into_body().collect().await.is_err());
    assert_eq!(server.hits("/speech"), 1);
}

#[tokio::test]
async fn a_body_that_breaks_after_its_first_byte_is_not_retried() {
    let breaks_later = Reply::BodyFails {
        status: 200,
        prefix: Bytes::from_static(b"first words"),
    };
    let server = Server::start([(
        "/speech",
        vec![breaks_later, Reply::status(200).body("audio")],
    )])
    .await;
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(policy()))
        .layer(FirstByteLayer::new())
        .service(Client::builder(TokioExecutor::new()).build_http());

    let response = client
        .oneshot(request(Method::GET, &server.url("/speech")))
        .await
        .unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(
        first,
        Bytes::from_static(b"first words"),
        "the byte read ahead is handed over"
    );
    let mut failed = false;
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            failed = true;
            break;
        }
    }
    assert!(
        failed,
        "the failure after the first byte belongs to the caller"
    );
    assert_eq!(server.hits("/speech"), 1);
}

#[tokio::test]
async fn a_post_whose_body_breaks_before_the_first_byte_is_not_retried() {
    let server = Server::start([(
        "/jobs",
        vec![breaks_before_first_byte(), Reply::status(201)],
    )])
    .await;
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(policy()))
        .layer(FirstByteLayer::new())
        .service(Client::builder(TokioExecutor::new()).build_http());

    let error = client
        .oneshot(request(Method::POST, &server.url("/jobs")))
        .await
        .unwrap_err();
    assert!(error
        .inner()
        .is_some_and(|e| e.is::<tower_http_retry::body::BodyFailedBeforeFirstByte>()));
    assert_eq!(server.hits("/jobs"), 1, "the server may have acted on it");
}

use crate::bodies;
use crate::watchdog;

/// A 200 whose body sends an empty data frame and then fails: the empty frame is no first byte, so the
/// attempt failed before its first byte and is retried.
#[tokio::test]
async fn an_empty_first_frame_is_not_the_first_byte() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    type Boxed = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;
    let calls = Arc::new(AtomicUsize::new(0));
    let upstream = tower::service_fn(move |_: Request<Full<Bytes>>| {
        let body: Boxed = if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            bodies::Hostile::new(bodies::Kind::EmptyThenError).boxed_unsync()
        } else {
            Full::new(Bytes::from_static(b"audio"))
                .map_err(|never| match never {})
                .boxed_unsync()
        };
        async move { Ok::<_, std::convert::Infallible>(http::Response::new(body)) }
    });
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(policy()))
        .layer(FirstByteLayer::new())
        .service(upstream);
    let response = client
        .oneshot(request(Method::GET, "http://tts.test/speech"))
        .await
        .unwrap();
    let history = response.extensions().get::<RetryHistory>().unwrap().clone();
    assert_eq!(history.attempt_count(), 2);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "audio"
    );
}

/// The hostile body catalogue through `FirstByteLayer`: each one ends with a response, a typed error,
/// or (endless empty frames) a wait that another task and a timeout can interrupt.
#[test]
fn hostile_bodies_through_first_byte() {
    use bodies::{Hostile, Kind, CATALOGUE};
    for kind in CATALOGUE {
        let outcome = watchdog::within(Duration::from_secs(20), false, move || async move {
            let upstream = tower::service_fn(move |_: Request<()>| async move {
                Ok::<_, std::convert::Infallible>(http::Response::new(Hostile::new(kind)))
            });
            use tower::Layer;
            let call = FirstByteLayer::new()
                .layer(upstream)
                .oneshot(Request::new(()));
            match tokio::time::timeout(Duration::from_millis(20), call).await {
                Err(_) => "timed out",
                Ok(Ok(_)) => "response",
                Ok(Err(_)) => "error",
            }
        });
        let expected = match kind {
            Kind::EmptyFrames => "timed out",
            Kind::EmptyThenError => "error",
            _ => "response",
        };
        assert_eq!(outcome, expected, "{kind:?}");
    }
}
