//! An axum proxy that forwards streamed uploads to an upstream through hyper-util's client, retrying
//! them with the retry layer. The request body is axum's `Body` (hyper's `Incoming` underneath): it is
//! not `Clone`, so the proxy adds `ReplayBodyLayer`, one line, and each upload is recorded (up to
//! 64 KiB) while the first attempt streams it.
//!
//! The upstream is a scripted server on 127.0.0.1 that fails the first attempts. The example sends two
//! streamed uploads through the proxy: one of 40 KiB, replayed until the upstream accepts it, and one of
//! 100 KiB, over the limit, sent once and answered with the upstream's 503 and the reason.
//!
//! Run it with `cargo run --example axum_proxy`. It exits with status 1 when an upload ends differently
//! from what the crate promises.

use retry_test_support::{server, upload};

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::Backoff;
use tower_http_retry::body::ReplayBodyService;
use tower_http_retry::body::{ReplayBody, ReplayBodyLayer};
use tower_http_retry::{Retry, RetryHistory, RetryLayer, RetryPolicy};

use server::{Reply, Server};
use upload::Upload;

/// The proxy's client to the upstream: replay bodies, retry, hyper-util.
type Upstream = ReplayBodyService<Retry<Client<HttpConnector, ReplayBody<Body>>>>;

#[derive(Clone)]
struct Proxy {
    upstream: Upstream,
    /// `http://127.0.0.1:PORT` of the upstream.
    origin: String,
}

/// Forwards a request to the upstream, and says in two headers how many times it was resent and why
/// the retries stopped.
async fn forward(State(proxy): State<Proxy>, mut request: Request) -> Result<Response, StatusCode> {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = format!("{}{path}", proxy.origin)
        .parse()
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    // Hop-by-hop headers describe the client's connection, not the upstream's.
    for name in [header::HOST, header::CONNECTION, header::TRANSFER_ENCODING] {
        request.headers_mut().remove(name);
    }
    let response = proxy.upstream.oneshot(request).await.map_err(|error| {
        eprintln!("upstream failed: {error}");
        StatusCode::BAD_GATEWAY
    })?;
    let resends = RetryHistory::resend_count(response.extensions());
    let stopped = response
        .extensions()
        .get::<RetryHistory>()
        .filter(|history| history.stop_reason().gave_up())
        .map(|history| history.stop_reason().to_string());
    let mut response = response.map(Body::new);
    response
        .headers_mut()
        .insert("x-resends", HeaderValue::from(resends));
    if let Some(why) = stopped.and_then(|why| HeaderValue::try_from(why).ok()) {
        response.headers_mut().insert("x-not-retried", why);
    }
    Ok(response)
}

/// Starts the proxy on 127.0.0.1 in front of `origin`.
async fn start_proxy(origin: String) -> SocketAddr {
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Body>>();
    let upstream = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new()) // the opt-in: any body, replayed from a 64 KiB recording
        .layer(RetryLayer::new(
            RetryPolicy::default().backoff(Backoff::exponential(Duration::from_millis(20))),
        ))
        .service(client);
    let app = Router::new()
        .fallback(forward)
        .with_state(Proxy { upstream, origin });
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// One upload through the proxy and what it must end with.
struct Case {
    path: &'static str,
    len: u64,
    status: u16,
    resends: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    let upstream = Server::start([
        (
            "/upload",
            vec![Reply::status(503), Reply::status(503), Reply::status(201)],
        ),
        ("/large", vec![Reply::status(503), Reply::status(201)]),
    ])
    .await;
    let proxy = start_proxy(upstream.url("")).await;
    println!(
        "upstream on {}, proxy on http://{proxy}\n",
        upstream.url("")
    );

    let client = Client::builder(TokioExecutor::new()).build_http::<Upload>();
    let cases = [
        Case {
            path: "/upload",
            len: 40 * 1024,
            status: 201,
            resends: 2,
        },
        Case {
            path: "/large",
            len: 100 * 1024,
            status: 503,
            resends: 0,
        },
    ];
    let mut failures = 0;
    for case in cases {
        // Streamed in 4 KiB chunks with no Content-Length: the proxy cannot know the size up front.
        let body = Upload::pattern(case.len, 4096);
        let sha256 = body.sha256();
        let request = axum::http::Request::put(format!("http://{proxy}{}", case.path))
            .body(body)
            .expect("a valid request");
        let response = client.request(request).await.expect("the proxy answers");
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        let (resends, why) = (header("x-resends"), header("x-not-retried"));
        let _ = response.into_body().collect().await;

        let attempts: Vec<_> = upstream
            .received()
            .into_iter()
            .filter(|r| r.path == case.path)
            .collect();
        println!("PUT {} ({} bytes, streamed)", case.path, case.len);
        for (n, attempt) in attempts.iter().enumerate() {
            let whole = attempt.body.len() as u64 == case.len
                && <[u8; 32]>::from(Sha256::digest(&attempt.body)) == sha256;
            let verdict = if whole {
                "identical to the upload"
            } else {
                "DIFFERENT"
            };
            println!(
                "  attempt {}: upstream received {} bytes, {verdict}",
                n + 1,
                attempt.body.len()
            );
            if !whole {
                failures += 1;
            }
        }
        match why.as_str() {
            "-" => println!("  -> {status}, resent {resends} times\n"),
            why => println!("  -> {status}, resent {resends} times; not retried: {why}\n"),
        }
        if status != case.status || resends != case.resends.to_string() {
            println!(
                "  UNEXPECTED: wanted {} after {} resends\n",
                case.status, case.resends
            );
            failures += 1;
        }
    }

    if failures == 0 {
        println!("every upload reached the upstream whole, on every attempt");
        ExitCode::SUCCESS
    } else {
        println!("{failures} unexpected outcomes");
        ExitCode::FAILURE
    }
}
