//! Running in-memory contenders: timed batches and checked runs.
//!
//! Time here is the calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time: every inner call
//! is ready at once, so a contender that does not sleep takes exactly its CPU time, and CPU time leaves
//! out the time the thread spent waiting for a core on a machine shared with other work. (A contender
//! that sleeps, as tower-resilience-retry does between attempts, shows it only in wall time: the counted
//! runs record that.)

use std::fmt::Debug;
use std::hint::black_box;
use std::time::Duration;

use cpu_time::ThreadTime;
use http::Response;
use tokio::runtime::Runtime;
use tower::{Service, ServiceExt};

use crate::contenders::Req;
use crate::workload::Workload;

/// Requests built ahead of each timed batch; building them is not timed.
const BATCH: u64 = 256;

/// A single-threaded runtime with a timer, like the one a client task runs on.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime")
}

/// Sends every request of `requests` through `service`, one after the other, handing each response to
/// `each`.
pub fn call_all<S, B>(
    runtime: &Runtime,
    service: &mut S,
    requests: Vec<Req>,
    mut each: impl FnMut(Response<B>),
) where
    S: Service<Req, Response = Response<B>>,
    S::Error: Debug,
{
    runtime.block_on(async {
        for request in requests {
            let ready = service.ready().await.expect("the service is ready");
            each(ready.call(request).await.expect("the call succeeds"));
        }
    });
}

/// The CPU time `iters` calls through `service` take, request building excluded: criterion's
/// `iter_custom` routine.
pub fn time_calls<S, B>(
    runtime: &Runtime,
    service: &mut S,
    workload: &Workload,
    iters: u64,
) -> Duration
where
    S: Service<Req, Response = http::Response<B>>,
    S::Error: Debug,
{
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH);
        let requests: Vec<Req> = (0..n).map(|_| workload.request()).collect();
        let start = ThreadTime::now();
        call_all(runtime, service, requests, |response| {
            black_box(response);
        });
        total += start.elapsed();
        left -= n;
    }
    total
}
