//! Hedged requests over real sockets on 127.0.0.1, HTTP/1.1 and HTTP/2, with hyper servers and
//! hyper-util's client: the first attempt stalls, the hedge 20 ms later answers at once. What the
//! server sees of the losing attempt (its handler dropped; for HTTP/2 the connection kept, for
//! HTTP/1.1 a connection closed), and a keyed POST hedged against a server that deduplicates by
//! its key. Real time: the calls here take tens of milliseconds.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::time::{sleep, Instant};
use tower::ServiceExt;
use tower_http_retry::body::ResponseBody;
use tower_http_retry::hedge::Hedge;
use tower_http_retry::{Retry, RetryHistory, RetryPolicy};

type Body = Full<Bytes>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How long the first attempt's handler stalls: far longer than any call here may take.
const STALL: Duration = Duration::from_secs(2);
/// A call whose hedge answered at once ends well before this (20 ms of delay and a round trip).
const QUICK: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    Http1,
    Http2,
}

/// What the server saw: connections accepted and closed, requests received, handlers dropped
/// unfinished.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    closed: AtomicUsize,
    requests: AtomicUsize,
    dropped: AtomicUsize,
}

/// Counts a handler dropped before it answered.
struct Unfinished(Arc<Seen>, bool);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.1 {
            self.0.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A hyper server on 127.0.0.1 speaking `version`; `handle` answers each request (with its number
/// from 0), and a handler dropped before it answered is counted.
async fn serve<H, F>(version: Version, handle: H) -> (SocketAddr, Arc<Seen>)
where
    H: Fn(usize, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counted = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.connections.fetch_add(1, Ordering::SeqCst);
            // No 40 ms of Nagle and delayed ACKs between a reset stream and the next request.
            let _ = socket.set_nodelay(true);
            let (seen, handle) = (counted.clone(), handle.clone());
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let n = seen.requests.fetch_add(1, Ordering::SeqCst);
                let guard = Unfinished(seen.clone(), false);
                let answer = handle(n, request);
                async move {
                    // The whole guard moves in, not just the field set below.
                    let mut guard = guard;
                    let response = answer.await;
                    guard.1 = true;
                    Ok::<_, Infallible>(response)
                }
            });
            let io = TokioIo::new(socket);
            let seen = counted.clone();
            tokio::spawn(async move {
                let _ = match version {
                    Version::Http1 => {
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await
                    }
                    Version::Http2 => {
                        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, service)
                            .await
                    }
                };
                seen.closed.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (addr, seen)
}

/// The first request stalls for [`STALL`]; every other one answers at once with its number.
async fn first_stalls(version: Version) -> (SocketAddr, Arc<Seen>) {
    serve(version, |n, _| async move {
        if n == 0 {
            sleep(STALL).await;
        }
        Response::new(Body::from(format!("request {n}")))
    })
    .await
}

fn client(version: Version, hedge: Hedge) -> Retry<Client<HttpConnector, Body>> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .http2_only(version == Version::Http2)
        .build(connector);
    Retry::new(client, RetryPolicy::default().hedge(hedge))
}

/// Hedges after 20 ms; a budget of one hedge per call.
fn after_20_ms() -> Hedge {
    Hedge::after(ms(20)).budget(1.0)
}

async fn text(response: Response<ResponseBody<Incoming>>) -> String {
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

fn history<B>(response: &Response<B>) -> RetryHistory {
    response.extensions().get::<RetryHistory>().unwrap().clone()
}

/// Waits (at most a second, in steps of 5 ms) until `done` holds.
async fn eventually(done: impl Fn() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(1);
    while !done() {
        if Instant::now() >= until {
            return false;
        }
        sleep(ms(5)).await;
    }
    true
}

/// One hedged GET through `client`: its answer, and how long it took.
async fn get(
    client: &Retry<Client<HttpConnector, Body>>,
    addr: SocketAddr,
) -> (Response<ResponseBody<Incoming>>, Duration) {
    let request = Request::get(format!("http://{addr}/items"))
        .body(Body::default())
        .unwrap();
    let start = Instant::now();
    let response = client.clone().oneshot(request).await.unwrap();
    (response, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_the_hedge_wins_the_loser_is_reset_and_the_connection_is_kept() {
    let (addr, seen) = first_stalls(Version::Http2).await;
    let client = client(Version::Http2, after_20_ms());

    let (response, took) = get(&client, addr).await;
    assert_eq!(response.status(), StatusCode::OK);
    let first = history(&response);
    assert_eq!((first.hedges(), first.won_by()), (1, Some(2)));
    assert_eq!(text(response).await, "request 1");
    assert!(took >= ms(20) && took < QUICK, "{took:?}");

    // The losing stream was reset: hyper dropped its handler, long before its 2 s were up.
    assert!(
        eventually(|| seen.dropped.load(Ordering::SeqCst) == 1).await,
        "the losing attempt's handler was not dropped"
    );

    // The next call goes over the same connection: a reset stream does not close it.
    // (It answers within the hedging delay, so it is not hedged, but a loaded machine may
    // take longer: the request count is not checked.)
    let (response, took) = get(&client, addr).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(text(response).await.starts_with("request "));
    assert!(took < QUICK, "{took:?}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    assert_eq!(seen.closed.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_the_hedge_wins_the_losers_connection_closes_and_the_next_call_succeeds() {
    let (addr, seen) = first_stalls(Version::Http1).await;
    let client = client(Version::Http1, after_20_ms());

    let (response, took) = get(&client, addr).await;
    assert_eq!(response.status(), StatusCode::OK);
    let first = history(&response);
    assert_eq!((first.hedges(), first.won_by()), (1, Some(2)));
    assert_eq!(text(response).await, "request 1");
    assert!(took >= ms(20) && took < QUICK, "{took:?}");
    // The first connection was busy with the stalled attempt: the hedge opened a second one.
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);

    // Dropping the losing attempt closes its connection (HTTP/1.1 cannot cancel a request any
    // other way), and hyper's server drops the handler of a request whose connection closed.
    assert!(
        eventually(|| seen.dropped.load(Ordering::SeqCst) == 1).await,
        "the losing attempt's handler was not dropped"
    );
    assert!(
        eventually(|| seen.closed.load(Ordering::SeqCst) == 1).await,
        "the losing attempt's connection was not closed"
    );

    // The next call succeeds, on the hedge's connection, kept alive in the pool.
    let (response, took) = get(&client, addr).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(text(response).await.starts_with("request "));
    assert!(took < QUICK, "{took:?}");
    let (requests, connections) = (
        seen.requests.load(Ordering::SeqCst),
        seen.connections.load(Ordering::SeqCst),
    );
    assert!(
        requests == 3 || requests == 4 && connections == 3,
        "{requests} requests, {connections} connections"
    );
    assert_eq!(connections, 2 + usize::from(requests == 4));
}

/// What a deduplicating server keeps per idempotency key: the answer of the request that
/// performed the side effect.
#[derive(Default)]
struct Ledger {
    answers: Mutex<HashMap<String, String>>,
    effects: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_post_is_hedged_and_the_deduplicating_server_performs_it_once() {
    for version in [Version::Http1, Version::Http2] {
        let ledger = Arc::new(Ledger::default());
        let kept = ledger.clone();
        // The first request with a key performs the side effect and records its answer, then
        // stalls before answering (a slow response path); a request with a key already seen
        // answers the recorded answer at once, without performing anything.
        let (addr, seen) = serve(version, move |_, request| {
            let ledger = kept.clone();
            async move {
                let key = request.headers()["idempotency-key"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let recorded = ledger.answers.lock().unwrap().get(&key).cloned();
                let created = Response::builder().status(StatusCode::CREATED);
                if let Some(answer) = recorded {
                    return created.body(Body::from(answer)).unwrap();
                }
                let effect = ledger.effects.fetch_add(1, Ordering::SeqCst) + 1;
                let answer = format!("order {effect}: {}", String::from_utf8_lossy(&body));
                ledger.answers.lock().unwrap().insert(key, answer.clone());
                sleep(STALL).await;
                created.body(Body::from(answer)).unwrap()
            }
        })
        .await;
        let client = client(version, after_20_ms());

        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{addr}/orders"))
            .header("idempotency-key", "order-7f3a")
            .body(Body::from("2 widgets"))
            .unwrap();
        let start = Instant::now();
        let response = client.clone().oneshot(request).await.unwrap();
        let took = start.elapsed();

        assert_eq!(response.status(), StatusCode::CREATED, "{version:?}");
        let first = history(&response);
        assert_eq!((first.hedges(), first.won_by()), (1, Some(2)));
        assert_eq!(text(response).await, "order 1: 2 widgets", "{version:?}");
        assert!(took < QUICK, "{version:?}: {took:?}");
        assert_eq!(seen.requests.load(Ordering::SeqCst), 2, "{version:?}");
        assert_eq!(ledger.effects.load(Ordering::SeqCst), 1, "{version:?}");
        assert!(
            eventually(|| seen.dropped.load(Ordering::SeqCst) == 1).await,
            "{version:?}: the losing attempt's handler was not dropped"
        );
    }
}
