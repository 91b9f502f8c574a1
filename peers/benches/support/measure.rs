//! The two passes every in-memory contender goes through: a counted run (allocations, body copies, inner
//! calls, outcome checked) and criterion's timed run.

use std::fmt::Debug;
use std::path::Path;
use std::time::Instant;

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use http::StatusCode;
use peer_benches::contenders::Req;
use peer_benches::inmemory::{call_all, time_calls};
use peer_benches::report::Counted;
use peer_benches::workload::{Answer, Workload};
use tokio::runtime::Runtime;
use tower::Service;

use super::counting_alloc::count;

/// Requests in a counted run.
const COUNTED: usize = 1000;

/// Counts what `COUNTED` requests through `service` (wrapping `inner`) cost, after a warm-up, and checks
/// that every one ended in 200 after `calls_per_request` calls with no body byte copied. The run's wall
/// time is kept too: the only figure here that shows time spent asleep.
pub fn counted<S, B>(
    name: &str,
    runtime: &Runtime,
    workload: &Workload,
    inner: &Answer,
    mut service: S,
    calls_per_request: usize,
) -> Counted
where
    S: Service<Req, Response = http::Response<B>>,
    S::Error: Debug,
{
    let warm_up: Vec<Req> = (0..COUNTED).map(|_| workload.request()).collect();
    call_all(runtime, &mut service, warm_up, drop);
    let counters = inner.counters();
    counters.reset();
    let requests: Vec<Req> = (0..COUNTED).map(|_| workload.request()).collect();
    let mut failures = 0usize;
    let start = Instant::now();
    let ((), allocations) = count(|| {
        call_all(runtime, &mut service, requests, |response| {
            failures += usize::from(response.status() != StatusCode::OK);
        })
    });
    let wall = start.elapsed();
    assert_eq!(failures, 0, "{name}: every request ends in 200");
    assert_eq!(
        counters.calls(),
        COUNTED * calls_per_request,
        "{name}: {calls_per_request} inner calls per request"
    );
    assert_eq!(counters.copied_bytes(), 0, "{name}: no body byte copied");
    let per_request = |n: u64| n as f64 / COUNTED as f64;
    Counted {
        contender: name.to_string(),
        allocations: per_request(allocations.count),
        allocated_bytes: per_request(allocations.bytes),
        copied_body_bytes: per_request(counters.copied_bytes() as u64),
        inner_calls: per_request(counters.calls() as u64),
        wall_ns: wall.as_nanos() as f64 / COUNTED as f64,
    }
}

/// Times `service` in `group` under `name`.
pub fn timed<S, B>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    runtime: &Runtime,
    workload: &Workload,
    mut service: S,
) where
    S: Service<Req, Response = http::Response<B>>,
    S::Error: Debug,
{
    group.bench_function(name, |b| {
        b.iter_custom(|iters| time_calls(runtime, &mut service, workload, iters))
    });
}

/// Where the benchmarks leave their figures for the summary: the target directory's `tmp/`.
pub fn figures_dir() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}
