//! Hostile servers over real sockets on 127.0.0.1: every call ends, in bounded time and memory, with a
//! response or a typed error. Waits are milliseconds; anything a server asks to wait longer for is
//! returned, not slept on.

use retry_test_support::{durations, server, upload};

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
use durations::ms;
use history::history;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use server::{Reply, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::body::ReplayBodyLayer;
use tower_http_retry::classify::ErrorKind;
use tower_http_retry::history::{AttemptOutcome, StopReason};
use tower_http_retry::{Retry, RetryLayer, RetryPolicy};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn quick() -> RetryPolicy {
    RetryPolicy::default().backoff(Backoff::constant(ms(2)).jitter(Jitter::None))
}

fn client(policy: RetryPolicy) -> Retry<HttpClient> {
    ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(Client::builder(TokioExecutor::new()).build_http())
}

fn get(url: &str) -> Request<Full<Bytes>> {
    Request::get(url).body(Full::default()).unwrap()
}

#[tokio::test]
async fn hostile_retry_after_values_never_stall_the_client() {
    let cases = [
        ("9999999999", Some(StopReason::RetryAfterTooLong)),
        (
            "Fri, 31 Dec 9999 23:59:59 GMT",
            Some(StopReason::RetryAfterTooLong),
        ),
        ("-1", None),
        ("tomorrow", None),
        ("99999999999999999999999999", None),
        ("1e9", None),
    ];
    for (value, stop) in cases {
        let path = "/hostile";
        let server = Server::start([(
            path,
            vec![
                Reply::status(503).header("retry-after", value),
                Reply::status(200),
            ],
        )])
        .await;
        let started = Instant::now();
        let response = client(quick())
            .oneshot(get(&server.url(path)))
            .await
            .unwrap();

        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{value}: never slept on"
        );
        let history = history(&response);
        match stop {
            // Representable but absurd: returned at once, the delay reported to the caller.
            Some(stop) => {
                assert_eq!(
                    response.status(),
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{value}"
                );
                assert_eq!(history.stop_reason(), stop, "{value}");
                assert!(
                    history.retry_after().unwrap() > Duration::from_secs(1_000_000),
                    "{value}"
                );
            }
            // Invalid: ignored, the ordinary backoff applies and the retry succeeds.
            None => {
                assert_eq!(response.status(), StatusCode::OK, "{value}");
                assert_eq!(history.attempts()[0].retry_after, None, "{value}");
            }
        }
    }
}

#[tokio::test]
async fn a_server_that_fails_forever_is_bounded_in_attempts_and_time() {
    let server = Server::start([("/down", vec![Reply::status(503)])]).await;
    let policy = quick().max_attempts(6).deadline(Duration::from_secs(5));
    let started = Instant::now();
    let response = client(policy)
        .oneshot(get(&server.url("/down")))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        history(&response).stop_reason(),
        StopReason::AttemptsExhausted
    );
    assert_eq!(server.hits("/down"), 6);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_server_that_never_answers_is_ended_by_the_timeouts() {
    let server = Server::start([("/void", vec![Reply::Hang])]).await;
    let policy = quick()
        .attempt_timeout(ms(30))
        .deadline(ms(200))
        .max_attempts(100);
    let started = Instant::now();
    let error = client(policy)
        .oneshot(get(&server.url("/void")))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();

    assert!(error.is_deadline() || error.is_attempt_timeout(), "{error}");
    assert!(
        elapsed >= ms(150) && elapsed < ms(1_000),
        "ended near the deadline: {elapsed:?}"
    );
    let timeouts = error
        .history()
        .attempts()
        .iter()
        .filter(|a| a.outcome == AttemptOutcome::Error(ErrorKind::AttemptTimeout))
        .count();
    assert!(
        timeouts >= 3,
        "several attempts timed out before the deadline: {timeouts}"
    );
}

/// A raw TCP peer that answers every request on every connection with `respond`.
async fn raw_server<F, Fut>(respond: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            // Read the request head before answering.
            let mut buf = vec![0u8; 4096];
            let _ = stream.read(&mut buf).await;
            tokio::spawn(respond(stream));
        }
    });
    format!("http://{addr}/")
}

#[tokio::test]
async fn a_trickled_response_head_is_cut_by_the_attempt_timeout() {
    let url = raw_server(|mut stream| async move {
        for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n" {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(ms(20)).await;
        }
    })
    .await;
    let policy = quick().attempt_timeout(ms(100)).max_attempts(3);
    let started = Instant::now();
    let error = client(policy).oneshot(get(&url)).await.unwrap_err();

    assert!(error.is_attempt_timeout());
    assert!(error.is_attempts_exhausted());
    assert!(started.elapsed() < ms(1_000));
}

#[tokio::test]
async fn ten_thousand_response_headers_are_a_typed_error_not_a_crash() {
    let url = raw_server(|mut stream| async move {
        let mut head = String::from("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n");
        for i in 0..10_000 {
            head.push_str(&format!("x-h{i}: {i}\r\n"));
        }
        head.push_str("\r\n");
        let _ = stream.write_all(head.as_bytes()).await;
    })
    .await;
    let error = client(quick()).oneshot(get(&url)).await.unwrap_err();

    // hyper refuses the oversized head; that is not a transport failure worth retrying.
    assert_eq!(error.kind(), Some(ErrorKind::Other));
    assert_eq!(error.history().attempt_count(), 1);
    let inner = error.inner().expect("the client's error");
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(inner);
    let mut parse = false;
    while let Some(e) = source {
        parse |= e
            .downcast_ref::<hyper::Error>()
            .is_some_and(|e| e.is_parse_too_large() || e.is_parse());
        source = e.source();
    }
    assert!(parse, "a parse error from hyper: {inner}");
}

#[tokio::test]
async fn a_one_gib_failure_body_is_not_read_past_the_drain_limit() {
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let connections = Arc::new(AtomicU64::new(0));
    let url = raw_server(move |mut stream| {
        let counter = counter.clone();
        let first = connections.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if !first {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await;
                return;
            }
            let head = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 1073741824\r\n\r\n";
            if stream.write_all(head).await.is_err() {
                return;
            }
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..(1024 * 1024 * 1024 / chunk.len()) {
                if stream.write_all(&chunk).await.is_err() {
                    return; // the client closed the connection
                }
                counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
        }
    })
    .await;
    let started = Instant::now();
    let response = client(quick()).oneshot(get(&url)).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5));
    tokio::time::sleep(ms(50)).await;
    let sent = sent.load(Ordering::SeqCst);
    assert!(
        sent < 64 * 1024 * 1024,
        "the server could push only what the socket buffers took: {sent} bytes"
    );
}

/// 500 concurrent GETs through one layer against a server that resets every fifth request.
/// Returns how many ended in 200, and checks that every other one ended in an error of the reset.
async fn concurrent_calls_against_a_resetting_server(
    policy: RetryPolicy,
) -> (usize, Vec<tower_http_retry::Error>) {
    let script = (0..1000)
        .map(|i| {
            if i % 5 == 0 {
                Reply::Reset
            } else {
                Reply::status(200)
            }
        })
        .collect();
    let server = Server::start([("/", script)]).await;
    let service = client(policy);
    let started = Instant::now();
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let service = service.clone();
            let url = server.url("/");
            tokio::spawn(async move { service.oneshot(get(&url)).await })
        })
        .collect();
    let (mut ok, mut errors) = (0, Vec::new());
    for task in tasks {
        match task.await.expect("no task panicked") {
            Ok(response) => {
                assert_eq!(response.status(), StatusCode::OK);
                ok += 1;
            }
            Err(error) => errors.push(error),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    (ok, errors)
}

#[tokio::test]
async fn every_one_of_many_concurrent_calls_ends_against_a_resetting_server() {
    // Without a budget every reset GET is retried: all end in 200.
    let (ok, errors) =
        concurrent_calls_against_a_resetting_server(quick().no_retry_budget().max_attempts(6))
            .await;
    assert_eq!((ok, errors.len()), (500, 0));
}

#[tokio::test]
async fn under_the_default_budget_calls_the_budget_refuses_end_in_their_error() {
    // 100 resets at once are more than 10% of 500 requests plus the floor: the budget refuses some
    // retries, and those calls end in the reset they got, saying the budget stopped them.
    let (ok, errors) = concurrent_calls_against_a_resetting_server(quick().max_attempts(6)).await;
    assert_eq!(ok + errors.len(), 500, "every call ended");
    assert!(!errors.is_empty(), "the budget refused some retries");
    for error in &errors {
        assert!(error.is_budget_exhausted(), "{error}");
        assert_eq!(error.kind().map(|k| k.is_never_sent()), Some(false));
    }
}

#[tokio::test]
async fn a_reset_in_the_middle_of_a_streamed_upload_is_retried_with_the_whole_body() {
    let payload: Bytes = (0..24 * 1024)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let server = Server::start([(
        "/upload",
        vec![Reply::ResetMidBody { after: 8 * 1024 }, Reply::status(201)],
    )])
    .await;
    // A one-shot streamed body, made replayable by one layer.
    let chunks: Vec<Bytes> = payload.chunks(1024).map(Bytes::copy_from_slice).collect();
    let client = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new())
        .layer(RetryLayer::new(quick()))
        .service(Client::builder(TokioExecutor::new()).build_http());
    let request = Request::put(server.url("/upload"))
        .body(upload::Upload::chunks(chunks))
        .unwrap();
    let response = client.oneshot(request).await.unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert!(
        !received[0].body.is_empty() && received[0].body.len() < payload.len(),
        "the first attempt was cut off after {} bytes",
        received[0].body.len()
    );
    assert!(
        payload.starts_with(&received[0].body),
        "what arrived was a prefix"
    );
    assert_eq!(
        received[1].body, payload,
        "the retry sent every byte once, in order"
    );
}
