//! Success path, in memory: a service that answers 200 to a PUT with ten headers and a 1 KiB
//! `Full<Bytes>` body, bare and behind each retry layer, in one criterion group.
//!
//! Before criterion times them, each contender is run under a counting allocator (allocations and bytes
//! per request, body bytes copied: the inner service checks that the body it reads is the original's
//! memory, inner calls per request), then all are timed in interleaved rounds.
//! `cargo run --release -p peer-benches --bin summary` tabulates all three.

mod support;

use std::time::Duration;

use criterion::Criterion;
use peer_benches::contenders::{
    bare_with_request_copy, tower_http_retry, tower_resilience_retry, tower_retry,
};
use peer_benches::inmemory::{runtime, time_calls};
use peer_benches::paired::{interleave, rounds, Contender};
use peer_benches::report;
use peer_benches::workload::{Answer, Script, Workload};
use tower_http_retry::RetryPolicy;

use support::counting_alloc::CountingAllocator;
use support::measure::{counted, figures_dir, timed};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const GROUP: &str = "success_path";
/// Interleaved rounds, and requests per contender per round.
const ROUNDS: usize = 31;
const BATCH: u64 = 10_000;
/// tower-resilience-retry's wait, never reached on this path.
const UNREACHED_BACKOFF: Duration = Duration::from_millis(100);

fn main() {
    let workload = Workload::in_memory();
    let runtime = runtime();
    let answer = || Answer::new(Script::AlwaysOk, &workload);

    let inner = answer();
    let rows = [
        counted("bare", &runtime, &workload, &inner, inner.clone(), 1),
        {
            let inner = answer();
            let service = bare_with_request_copy(inner.clone());
            counted(
                "bare_with_request_copy",
                &runtime,
                &workload,
                &inner,
                service,
                1,
            )
        },
        {
            let inner = answer();
            counted(
                "tower_retry",
                &runtime,
                &workload,
                &inner,
                tower_retry(inner.clone()),
                1,
            )
        },
        {
            let inner = answer();
            let service = tower_resilience_retry(inner.clone(), UNREACHED_BACKOFF);
            counted(
                "tower_resilience_retry",
                &runtime,
                &workload,
                &inner,
                service,
                1,
            )
        },
        {
            let inner = answer();
            let service = tower_http_retry(inner.clone(), RetryPolicy::default());
            counted("tower_http_retry", &runtime, &workload, &inner, service, 1)
        },
    ];
    let path = report::counted_file(figures_dir(), GROUP);
    report::write_counted(&path, GROUP, &rows).expect("the counted figures are written");

    let mut bare = answer();
    let mut copy = bare_with_request_copy(answer());
    let mut tower = tower_retry(answer());
    let mut resilience = tower_resilience_retry(answer(), UNREACHED_BACKOFF);
    let mut ours = tower_http_retry(answer(), RetryPolicy::default());
    let results = interleave(
        rounds(ROUNDS),
        &mut [
            Contender::new("bare", BATCH, || {
                time_calls(&runtime, &mut bare, &workload, BATCH)
            }),
            Contender::new("bare_with_request_copy", BATCH, || {
                time_calls(&runtime, &mut copy, &workload, BATCH)
            }),
            Contender::new("tower_retry", BATCH, || {
                time_calls(&runtime, &mut tower, &workload, BATCH)
            }),
            Contender::new("tower_resilience_retry", BATCH, || {
                time_calls(&runtime, &mut resilience, &workload, BATCH)
            }),
            Contender::new("tower_http_retry", BATCH, || {
                time_calls(&runtime, &mut ours, &workload, BATCH)
            }),
        ],
    );
    let path = report::paired_file(figures_dir(), GROUP);
    report::write_paired(&path, GROUP, &results).expect("the figures are written");

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group(GROUP);
    timed(&mut group, "bare", &runtime, &workload, bare);
    timed(
        &mut group,
        "bare_with_request_copy",
        &runtime,
        &workload,
        copy,
    );
    timed(&mut group, "tower_retry", &runtime, &workload, tower);
    timed(
        &mut group,
        "tower_resilience_retry",
        &runtime,
        &workload,
        resilience,
    );
    timed(&mut group, "tower_http_retry", &runtime, &workload, ours);
    group.finish();
    criterion.final_summary();
}
