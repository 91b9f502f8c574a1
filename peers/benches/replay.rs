//! Streaming 64 MiB through a `ReplayBody` against the bare body, side by side in one run.
//!
//! - `upload_64mib_loopback`: a PUT through hyper-util's client to a hyper server on 127.0.0.1 that
//!   reads and discards the body: what an upload costs in practice.
//! - `stream_64mib_copied`: every frame polled in memory and copied into a buffer, as a transport
//!   writing to a socket does; no network.
//! - `stream_64mib_frames_only`: every frame polled, nothing read from it: the per-frame overhead alone.
//!
//! The upload is 64 MiB in 16 KiB chunks sliced from one shared buffer (nothing is allocated per
//! chunk), with an unknown length, and the default 64 KiB limit: the first 64 KiB are recorded, then
//! the recording is dropped and the rest streams through.
//!
//! Times are the benchmark thread's CPU time, not wall time: the machine is shared, and wall time would
//! also count other processes' turns on the CPU. Everything runs on that one thread (the loopback
//! client and server share a current-thread runtime), so its CPU time is the whole cost, the kernel's
//! work for the loopback socket included.
//!
//! Run with `cargo bench -p peer-benches --bench replay`.

#[path = "support/loopback.rs"]
mod harness;

use retry_test_support::upload;

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_http_retry::body::ReplayBody;
use upload::Upload;

use self::harness::{serve, Bench, ThreadCpuTime};

const LEN: u64 = 64 << 20;
const CHUNK: usize = 16 << 10;

fn upload() -> Upload {
    Upload::pattern(LEN, CHUNK)
}

/// Polls every frame of a body whose frames are all ready, handing each data chunk to `sink`.
fn stream<B: Body<Data = Bytes> + Unpin>(mut body: B, mut sink: impl FnMut(&Bytes)) {
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(chunk) = frame.data_ref() {
                    sink(chunk);
                }
            }
            Poll::Ready(None) => return,
            Poll::Ready(Some(Err(_))) => panic!("the body failed"),
            Poll::Pending => panic!("every frame is ready"),
        }
    }
}

fn in_memory(c: &mut Bench) {
    let mut group = c.benchmark_group("stream_64mib_copied");
    group.throughput(Throughput::Bytes(LEN));
    group.sample_size(20);
    let mut socket_buffer = vec![0u8; CHUNK];
    let mut copy = move |chunk: &Bytes| {
        socket_buffer[..chunk.len()].copy_from_slice(chunk);
        std::hint::black_box(&socket_buffer);
    };
    group.bench_function("bare", |b| {
        b.iter_batched(
            upload,
            |body| stream(body, &mut copy),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("replay", |b| {
        b.iter_batched(
            || ReplayBody::new(upload()),
            |body| stream(body, &mut copy),
            BatchSize::LargeInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("stream_64mib_frames_only");
    group.throughput(Throughput::Bytes(LEN));
    group.sample_size(20);
    let count = |chunk: &Bytes| {
        std::hint::black_box(chunk.len());
    };
    group.bench_function("bare", |b| {
        b.iter_batched(upload, |body| stream(body, count), BatchSize::LargeInput)
    });
    group.bench_function("replay", |b| {
        b.iter_batched(
            || ReplayBody::new(upload()),
            |body| stream(body, count),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// A server on 127.0.0.1 that reads each request body to its end and answers 200.
async fn sink_server() -> SocketAddr {
    serve(|request: Request<_>| async move {
        let mut body = request.into_body();
        while let Some(frame) = body.frame().await {
            frame.expect("the upload arrives whole");
        }
        Response::new(Empty::<Bytes>::new())
    })
    .await
}

async fn put<B>(client: &Client<HttpConnector, B>, addr: SocketAddr, body: B)
where
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let request = Request::put(format!("http://{addr}/upload"))
        .body(body)
        .unwrap();
    let response = client.request(request).await.expect("a response");
    let mut body = response.into_body();
    poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
}

fn loopback(c: &mut Bench) {
    // One thread for client and server: no cross-core wake-ups, so the two runs differ only in the body.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = runtime.block_on(sink_server());
    let bare = Client::builder(TokioExecutor::new()).build_http::<Upload>();
    let replay = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Upload>>();

    let mut group = c.benchmark_group("upload_64mib_loopback");
    group.throughput(Throughput::Bytes(LEN));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("bare", |b| {
        b.iter_batched(
            upload,
            |body| runtime.block_on(put(&bare, addr, body)),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("replay", |b| {
        b.iter_batched(
            || ReplayBody::new(upload()),
            |body| runtime.block_on(put(&replay, addr, body)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = in_memory, loopback
}
criterion_main!(benches);
