//! Reading the response body within the attempt over real sockets on 127.0.0.1, HTTP/1.1 and
//! HTTP/2 (prior knowledge): a body reset after 10 of its 1,000 bytes is retried for a GET and is
//! the error of a POST without a key, sent once; a body over the limit streams through untouched.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::{Layer, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::history::StopReason;
use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};

/// The protocol a test runs over.
#[derive(Clone, Copy, Debug)]
enum Version {
    Http1,
    Http2,
}

/// What the server answers one request with.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// `Content-Length: 1000`, 10 bytes, then a TCP reset.
    ResetAfter10,
    /// `Content-Length: 1000` and the 1,000 bytes.
    Whole,
    /// `len` bytes in 16 KiB chunks, without a length.
    Large(usize),
}

/// The 1,000 bytes of the whole body.
fn thousand() -> Bytes {
    (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The bytes of a large body.
fn large(len: usize) -> Bytes {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A server that answers the n-th request with `script[n]` (the last repeats), over `version`; the
/// count of requests it received.
async fn serve(version: Version, script: Vec<Answer>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let counted = received.clone();
    let script = Arc::new(script);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // Dropping the socket then sends a reset rather than a graceful close.
            let _ = stream.set_zero_linger();
            let (counted, script) = (counted.clone(), script.clone());
            tokio::spawn(async move {
                let abort = Arc::new(Notify::new());
                let on_reset = abort.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let n = counted.fetch_add(1, Ordering::SeqCst);
                    let answer = script[n.min(script.len() - 1)];
                    answer_with(request, answer, on_reset.clone())
                });
                let io = TokioIo::new(stream);
                match version {
                    Version::Http1 => {
                        let connection = http1::Builder::new().serve_connection(io, service);
                        tokio::select! {
                            _ = connection => {}
                            _ = abort.notified() => {}
                        }
                    }
                    Version::Http2 => {
                        let connection =
                            http2::Builder::new(TokioExecutor::new()).serve_connection(io, service);
                        tokio::select! {
                            _ = connection => {}
                            _ = abort.notified() => {}
                        }
                    }
                }
            });
        }
    });
    (addr, received)
}

async fn answer_with(
    request: Request<Incoming>,
    answer: Answer,
    abort: Arc<Notify>,
) -> Result<Response<ServerBody>, Infallible> {
    // The request body is read whole first, as a server would.
    let _ = request.into_body().collect().await;
    let response = match answer {
        Answer::ResetAfter10 => {
            Response::builder()
                .header("content-length", "1000")
                .body(ServerBody::Truncated {
                    prefix: Some(thousand().slice(..10)),
                    abort,
                    later: Box::pin(tokio::time::sleep(Duration::from_millis(5))),
                })
        }
        Answer::Whole => Response::builder()
            .header("content-length", "1000")
            .body(ServerBody::Chunks(vec![thousand()])),
        Answer::Large(len) => {
            let bytes = large(len);
            let chunks = (0..len)
                .step_by(16 * 1024)
                .map(|at| bytes.slice(at..(at + 16 * 1024).min(len)))
                .rev()
                .collect();
            Response::builder().body(ServerBody::Chunks(chunks))
        }
    };
    Ok(response.unwrap())
}

/// The server's bodies: chunks (last first), or 10 bytes and then a reset of the connection.
enum ServerBody {
    Chunks(Vec<Bytes>),
    Truncated {
        prefix: Option<Bytes>,
        abort: Arc<Notify>,
        later: Pin<Box<tokio::time::Sleep>>,
    },
}

impl Body for ServerBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ServerBody::Chunks(chunks) => Poll::Ready(chunks.pop().map(|c| Ok(Frame::data(c)))),
            ServerBody::Truncated {
                prefix,
                abort,
                later,
            } => {
                if let Some(prefix) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(prefix))));
                }
                // A moment for the prefix to leave, then the connection is reset.
                ready!(later.as_mut().poll(cx));
                abort.notify_one();
                Poll::Pending
            }
        }
    }
}

type Client_ = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client(version: Version) -> Client_ {
    let mut builder = Client::builder(TokioExecutor::new());
    if let Version::Http2 = version {
        builder.http2_only(true);
    }
    builder.build_http()
}

fn policy(limit: usize) -> RetryPolicy {
    RetryPolicy::default()
        .backoff(Backoff::constant(Duration::from_millis(5)).jitter(Jitter::None))
        .buffer_responses(limit)
}

fn request(method: Method, addr: SocketAddr) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(format!("http://{addr}/v1/file"))
        .body(Full::new(Bytes::from_static(b"{\"size\": 1000}")))
        .unwrap()
}

async fn a_get_reset_after_10_of_1000_bytes_is_sent_again(version: Version) {
    let (addr, received) = serve(version, vec![Answer::ResetAfter10, Answer::Whole]).await;
    let retry = RetryLayer::new(policy(64 * 1024)).layer(client(version));
    let response = retry
        .oneshot(request(Method::GET, addr))
        .await
        .unwrap_or_else(|error| panic!("{version:?}: {error:?}"));

    assert_eq!(response.status(), StatusCode::OK);
    let history = response.extensions().get::<RetryHistory>().unwrap().clone();
    assert_eq!(history.attempt_count(), 2, "{version:?}: {history:?}");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 1000);
    assert_eq!(body, thousand());
    assert_eq!(received.load(Ordering::SeqCst), 2);
}

async fn a_post_without_a_key_reset_mid_body_fails_sent_once(version: Version) {
    let (addr, received) = serve(version, vec![Answer::ResetAfter10, Answer::Whole]).await;
    let retry = RetryLayer::new(policy(64 * 1024)).layer(client(version));
    let error = retry
        .oneshot(request(Method::POST, addr))
        .await
        .expect_err("the body's failure is the call's error");

    assert!(error.kind().is_some_and(|kind| !kind.is_never_sent()));
    assert_eq!(error.history().stop_reason(), StopReason::NotIdempotent);
    assert_eq!(error.history().attempt_count(), 1);
    // Give a second attempt, had there been one, the time to arrive.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(received.load(Ordering::SeqCst), 1, "{version:?}: sent once");
}

async fn a_body_over_the_limit_streams_through_untouched(version: Version) {
    let len = 1 << 20;
    let (addr, received) = serve(version, vec![Answer::Large(len)]).await;
    let retry = RetryLayer::new(policy(64 * 1024)).layer(client(version));
    let response = retry.oneshot(request(Method::GET, addr)).await.unwrap();

    let history = response.extensions().get::<RetryHistory>().unwrap().clone();
    assert_eq!(history.stop_reason(), StopReason::Streamed);
    assert_eq!(history.attempt_count(), 1);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), len);
    assert_eq!(body, large(len));
    assert_eq!(received.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn h1_a_get_reset_after_10_of_1000_bytes_gets_200_and_1000_bytes_after_2_attempts() {
    a_get_reset_after_10_of_1000_bytes_is_sent_again(Version::Http1).await;
}

#[tokio::test]
async fn h2_a_get_reset_after_10_of_1000_bytes_gets_200_and_1000_bytes_after_2_attempts() {
    a_get_reset_after_10_of_1000_bytes_is_sent_again(Version::Http2).await;
}

#[tokio::test]
async fn h1_a_post_without_a_key_reset_mid_body_gets_the_error_sent_once() {
    a_post_without_a_key_reset_mid_body_fails_sent_once(Version::Http1).await;
}

#[tokio::test]
async fn h2_a_post_without_a_key_reset_mid_body_gets_the_error_sent_once() {
    a_post_without_a_key_reset_mid_body_fails_sent_once(Version::Http2).await;
}

#[tokio::test]
async fn h1_a_body_over_the_limit_streams_through_untouched() {
    a_body_over_the_limit_streams_through_untouched(Version::Http1).await;
}

#[tokio::test]
async fn h2_a_body_over_the_limit_streams_through_untouched() {
    a_body_over_the_limit_streams_through_untouched(Version::Http2).await;
}
