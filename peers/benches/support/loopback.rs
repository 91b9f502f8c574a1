//! What the loopback benchmarks of the crate's bodies (`replay`, `response_body`) share: the benchmark
//! thread's CPU time as criterion's measurement, and a hyper HTTP/1.1 server on 127.0.0.1.
//!
//! Included by path (`#[path = "support/loopback.rs"] mod harness;`), not through `support/mod.rs`: those
//! benchmarks use none of the in-memory ones' helpers, and the in-memory ones none of these.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::Criterion;
use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The CPU time of the calling thread, reported like wall time. Client and server share a
/// current-thread runtime, so that thread's CPU time is the whole cost, the kernel's work for the
/// loopback socket included; wall time would also count other processes' turns on a shared machine.
pub struct ThreadCpuTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = ThreadTime;
    type Value = Duration;

    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }
    fn end(&self, start: ThreadTime) -> Duration {
        start.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        static WALL_TIME: WallTime = WallTime;
        WALL_TIME.formatter()
    }
}

/// Criterion measuring [`ThreadCpuTime`].
pub type Bench = Criterion<ThreadCpuTime>;

/// A hyper HTTP/1.1 server on 127.0.0.1, on the current runtime, answering every request with
/// `answer`; its address.
pub async fn serve<F, Fut, B>(answer: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            let service = service_fn(move |request| {
                let response = answer(request);
                async move { Ok::<_, Infallible>(response.await) }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    addr
}
