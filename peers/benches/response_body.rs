//! Reading a response body within the attempt (`RetryPolicy::buffer_responses`) against the bare
//! client, side by side in one run: a GET of 64 KiB and of 1 MiB over loopback HTTP/1.1.
//!
//! - `bare`: hyper-util's client alone.
//! - `retry`: the retry layer with its default policy (responses pass through as they stream).
//! - `retry_buffered`: the same with `buffer_responses(2 MiB)`: the body is read within the
//!   attempt, then handed to the caller ready at once.
//!
//! Every run reads the whole body. The server is hyper on 127.0.0.1, answering each GET with the
//! body in 16 KiB chunks sliced from one shared buffer, with its `Content-Length`.
//!
//! Times are the benchmark thread's CPU time, as in the `replay` benchmark: client and server share a
//! current-thread runtime, so that thread's CPU time is the whole cost, the loopback socket's kernel
//! work included. Throughput is body bytes per second of that time.
//!
//! First interleaved rounds (`peer_benches::paired`): every contender runs one batch per round, in an
//! order that rotates, and the throughput against `bare` is taken within each round (the median and
//! quartiles over the rounds are printed); then criterion, one contender after another. All three
//! contenders are clones of one client (one connection pool, so one connection to the server) and
//! run the same code to send the GET and read the body; they differ only in the layer.
//!
//! Run with `cargo bench -p peer-benches --bench response_body`.

#[path = "support/loopback.rs"]
mod harness;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cpu_time::ThreadTime;
use criterion::{Criterion, Throughput};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Empty};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use peer_benches::paired::{interleave, rounds, Contender};
use tower::{Layer, Service, ServiceExt};
use tower_http_retry::{RetryLayer, RetryPolicy};

use self::harness::{serve, Bench, ThreadCpuTime};

const CHUNK: usize = 16 << 10;

/// A server on 127.0.0.1 that answers `GET /{len}` with `len` bytes in 16 KiB chunks.
async fn server(payload: Bytes) -> SocketAddr {
    serve(move |request: Request<_>| {
        let len: usize = request.uri().path()[1..].parse().unwrap();
        let body = payload.slice(..len);
        async move {
            Response::builder()
                .header("content-length", len)
                .body(Chunks { body, at: 0 })
                .unwrap()
        }
    })
    .await
}

/// A body in 16 KiB chunks sliced from one buffer, every one ready.
struct Chunks {
    body: Bytes,
    at: usize,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let (at, len) = (self.at, self.body.len());
        if at >= len {
            return std::task::Poll::Ready(None);
        }
        let end = (at + CHUNK).min(len);
        self.at = end;
        std::task::Poll::Ready(Some(Ok(Frame::data(self.body.slice(at..end)))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact((self.body.len() - self.at) as u64)
    }
}

/// The time `batch` GETs through `client` take.
fn timed<S, B>(
    runtime: &tokio::runtime::Runtime,
    client: &mut S,
    uri: &str,
    len: usize,
    batch: u64,
) -> Duration
where
    S: Service<Request<Empty<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: Body,
    B::Error: std::fmt::Debug,
{
    let start = ThreadTime::now();
    for _ in 0..batch {
        runtime.block_on(get(client, uri, len));
    }
    start.elapsed()
}

/// One GET through `client`, its body read to the end.
async fn get<S, B>(client: &mut S, uri: &str, len: usize)
where
    S: Service<Request<Empty<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: Body,
    B::Error: std::fmt::Debug,
{
    let request = Request::get(uri).body(Empty::new()).unwrap();
    let response = client
        .ready()
        .await
        .unwrap()
        .call(request)
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.expect("a body");
    assert_eq!(body.to_bytes().len(), len);
}

/// The sizes: a benchmark group's name, the body's length, requests per interleaved batch.
const SIZES: [(&str, usize, u64); 2] = [
    ("get_64kib_loopback", 64 << 10, 32),
    ("get_1mib_loopback", 1 << 20, 4),
];

/// Interleaved rounds per size, about 1.5 s each: the ratio of one round scatters by about ±10%
/// on a shared machine, and the median of 31 rounds moved by ±1.5% from run to run.
const ROUNDS: usize = 301;

/// Rounds run first and not counted: the connection's read buffer grows to the body's size and the
/// caches warm up.
const WARM_UP_ROUNDS: usize = 10;

fn main() {
    // One thread for client and server: the contenders differ only in the layer.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let payload: Bytes = (0..(1usize << 20)).map(|i| (i % 251) as u8).collect();
    let addr = runtime.block_on(server(payload));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let bare = client.clone();
    let retry = RetryLayer::new(RetryPolicy::default()).layer(client.clone());
    let buffered = RetryPolicy::default().buffer_responses(2 << 20);
    let retry_buffered = RetryLayer::new(buffered).layer(client);

    for (name, len, batch) in SIZES {
        let uri = format!("http://{addr}/{len}");
        let (runtime, uri) = (&runtime, uri.as_str());
        let (mut a, mut b, mut c) = (bare.clone(), retry.clone(), retry_buffered.clone());
        let mut contenders = [
            Contender::new("bare", batch, move || {
                timed(runtime, &mut a, uri, len, batch)
            }),
            Contender::new("retry", batch, move || {
                timed(runtime, &mut b, uri, len, batch)
            }),
            Contender::new("retry_buffered", batch, move || {
                timed(runtime, &mut c, uri, len, batch)
            }),
        ];
        // The first opens the connection the rounds then reuse.
        interleave(rounds(WARM_UP_ROUNDS), &mut contenders);
        let results = interleave(rounds(ROUNDS), &mut contenders);
        let baseline = &results[0];
        println!("{name}, interleaved ({} rounds):", rounds(ROUNDS));
        for result in &results {
            let gib_s = len as f64 / result.ns() / 1.073_741_824;
            // Throughput against bare: bare's time over the contender's, round by round.
            let ratio = baseline.ratio_to(result);
            println!(
                "  {:<15} {:>8.3} GiB/s  {:.3} x bare (quartiles {:.3} to {:.3})",
                result.contender, gib_s, ratio.median, ratio.q1, ratio.q3
            );
        }
    }

    let mut criterion: Bench = Criterion::default()
        .with_measurement(ThreadCpuTime)
        .configure_from_args();
    loopback(
        &mut criterion,
        &runtime,
        addr,
        (bare, retry, retry_buffered),
    );
    criterion.final_summary();
}

fn loopback<S0, S1, S2, B0, B1, B2>(
    c: &mut Bench,
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
    (mut bare, mut retry, mut retry_buffered): (S0, S1, S2),
) where
    S0: Service<Request<Empty<Bytes>>, Response = Response<B0>>,
    S0::Error: std::fmt::Debug,
    B0: Body,
    B0::Error: std::fmt::Debug,
    S1: Service<Request<Empty<Bytes>>, Response = Response<B1>>,
    S1::Error: std::fmt::Debug,
    B1: Body,
    B1::Error: std::fmt::Debug,
    S2: Service<Request<Empty<Bytes>>, Response = Response<B2>>,
    S2::Error: std::fmt::Debug,
    B2: Body,
    B2::Error: std::fmt::Debug,
{
    for (name, len, _) in SIZES {
        let uri = format!("http://{addr}/{len}");
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function("bare", |b| {
            b.iter(|| runtime.block_on(get(&mut bare, &uri, len)))
        });
        group.bench_function("retry", |b| {
            b.iter(|| runtime.block_on(get(&mut retry, &uri, len)))
        });
        group.bench_function("retry_buffered", |b| {
            b.iter(|| runtime.block_on(get(&mut retry_buffered, &uri, len)))
        });
        group.finish();
    }
}
