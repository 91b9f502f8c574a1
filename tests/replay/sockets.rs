//! Streamed uploads replayed over real sockets: hyper-util's client, through the replay and retry
//! layers, to a hyper server on 127.0.0.1 that hashes every body it receives and fails the first
//! attempts.

use crate::upload;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::body::NotReplayable;
use tower_http_retry::body::{ReplayBody, ReplayBodyLayer};
use tower_http_retry::history::StopReason;
use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};
use upload::Upload;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// A body as the server received it, hashed as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Received {
    len: u64,
    sha256: [u8; 32],
    trailers: Option<HeaderMap>,
}

/// A server that hashes each request body and answers 503 to the first `failures` requests, 200 after.
struct Upstream {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    accept: JoinHandle<()>,
}

impl Upstream {
    async fn start(failures: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let calls = Arc::new(Mutex::new(0usize));
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (log, calls) = (log.clone(), calls.clone());
                let service = service_fn(move |request: Request<Incoming>| {
                    let (log, calls) = (log.clone(), calls.clone());
                    async move {
                        let n = {
                            let mut calls = calls.lock().unwrap();
                            *calls += 1;
                            *calls
                        };
                        let received = hash(request.into_body()).await;
                        log.lock().unwrap().push(received);
                        let status = if n <= failures { 503 } else { 200 };
                        let mut response = Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = StatusCode::from_u16(status).unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Self {
            addr,
            received,
            accept,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/upload", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Reads a body to its end, hashing as it goes; nothing is kept but the hash.
async fn hash(mut body: Incoming) -> Received {
    let (mut digest, mut len, mut trailers) = (Sha256::new(), 0, None);
    while let Some(Ok(frame)) = body.frame().await {
        match frame.into_data() {
            Ok(chunk) => {
                len += chunk.len() as u64;
                digest.update(&chunk);
            }
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    Received {
        len,
        sha256: digest.finalize().into(),
        trailers,
    }
}

fn quick() -> RetryPolicy {
    RetryPolicy::default().backoff(Backoff::constant(Duration::from_millis(2)).jitter(Jitter::None))
}

/// Sends `upload` as a PUT through the replay and retry layers; returns the status and the history.
async fn put(
    upstream: &Upstream,
    replay: ReplayBodyLayer,
    upload: Upload,
    headers: &[(&'static str, &'static str)],
) -> (StatusCode, Option<RetryHistory>) {
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Upload>>();
    let service = ServiceBuilder::new()
        .layer(replay)
        .layer(RetryLayer::new(quick()))
        .service(client);
    let mut request = Request::put(upstream.url());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = service
        .oneshot(request.body(upload).unwrap())
        .await
        .expect("a response");
    let history = response.extensions().get::<RetryHistory>().cloned();
    (response.status(), history)
}

/// Uploads `len` bytes streamed (unknown length), then with a known length, to a server that fails the
/// first two attempts, and checks every attempt the server received against the original's hash.
async fn upload_through_two_failures(len: u64) {
    for exact in [false, true] {
        let upstream = Upstream::start(2).await;
        let body = Upload::pattern(len, 16 * 1024).exact(exact);
        let expected = Received {
            len,
            sha256: body.sha256(),
            trailers: None,
        };
        let (status, history) = put(&upstream, ReplayBodyLayer::new(), body, &[]).await;
        let history = history.expect("the first attempt failed, so there is a history");
        let received = upstream.received();
        if len <= 64 * KIB {
            assert_eq!(status, StatusCode::OK, "{len} bytes, exact: {exact}");
            assert_eq!(history.attempt_count(), 3);
            assert_eq!(received, vec![expected; 3], "{len} bytes, exact: {exact}");
        } else {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(history.attempt_count(), 1, "{len} bytes, exact: {exact}");
            assert_eq!(
                history.stop_reason(),
                StopReason::BodyNotReplayable(NotReplayable::TooLarge { limit: 64 * KIB })
            );
            assert_eq!(received, vec![expected], "the one attempt was whole");
        }
    }
}

#[tokio::test]
async fn an_empty_upload_is_replayed() {
    upload_through_two_failures(0).await;
}

#[tokio::test]
async fn a_one_byte_upload_is_replayed() {
    upload_through_two_failures(1).await;
}

#[tokio::test]
async fn an_upload_one_byte_under_the_limit_is_replayed() {
    upload_through_two_failures(64 * KIB - 1).await;
}

#[tokio::test]
async fn an_upload_exactly_at_the_limit_is_replayed() {
    upload_through_two_failures(64 * KIB).await;
}

#[tokio::test]
async fn an_upload_one_byte_over_the_limit_is_sent_once() {
    upload_through_two_failures(64 * KIB + 1).await;
}

#[tokio::test]
async fn a_ten_mib_upload_is_sent_once() {
    upload_through_two_failures(10 * MIB).await;
}

#[tokio::test]
async fn a_ten_mib_upload_under_a_raised_limit_is_replayed() {
    let upstream = Upstream::start(2).await;
    let body = Upload::pattern(10 * MIB, 64 * 1024);
    let sha256 = body.sha256();
    let replay = ReplayBodyLayer::new().limit(16 * MIB);
    let (status, history) = put(&upstream, replay, body, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history.unwrap().attempt_count(), 3);
    let received = upstream.received();
    assert_eq!(received.len(), 3);
    assert!(received
        .iter()
        .all(|r| r.len == 10 * MIB && r.sha256 == sha256));
}

#[tokio::test]
async fn trailers_are_sent_again_on_every_attempt() {
    let upstream = Upstream::start(2).await;
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("9f86d081"));
    let body = Upload::pattern(3000, 1000).with_trailers(trailers.clone());
    let sha256 = body.sha256();
    // HTTP/1.1 sends trailers on a chunked body that announces them.
    let (status, _) = put(
        &upstream,
        ReplayBodyLayer::new(),
        body,
        &[("trailer", "x-checksum")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let expected = Received {
        len: 3000,
        sha256,
        trailers: Some(trailers),
    };
    assert_eq!(upstream.received(), vec![expected; 3]);
}

/// A server that reads a request's head, answers 503 at once, and keeps the connection open without
/// reading the body. Returns its address.
async fn answer_before_the_body() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
                if stream.write_all(answer).await.is_ok() {
                    std::future::pending::<()>().await; // the connection stays open, unread
                }
            });
        }
    });
    addr
}

/// The server answers 503 while the client is still uploading, and keeps the connection: that
/// attempt's connection still owns the body, so the request is not retried rather than sent again
/// with a hole in it.
#[tokio::test]
async fn an_answer_while_the_upload_is_still_being_sent_is_not_retried() {
    let addr = answer_before_the_body().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Upload>>();
    let service = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new())
        .layer(RetryLayer::new(quick()))
        .service(client);
    let body = Upload::pattern(1000, 1000).stalled();
    let request = Request::put(format!("http://{addr}/upload"))
        .body(body)
        .unwrap();
    let response = service.oneshot(request).await.expect("a response");
    let (status, history) = (
        response.status(),
        response.extensions().get::<RetryHistory>().cloned(),
    );
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let history = history.expect("history");
    assert_eq!(history.attempt_count(), 1);
    assert_eq!(
        history.stop_reason(),
        StopReason::BodyNotReplayable(NotReplayable::StillSending)
    );
}
