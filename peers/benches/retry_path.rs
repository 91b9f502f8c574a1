//! Retry path, in memory: every request meets 503, 503, then 200, with no wait between attempts; the
//! time is per logical request (three inner calls). Counted, interleaved and timed like the success path.

mod support;

use std::time::Duration;

use criterion::Criterion;
use peer_benches::contenders::{tower_http_retry, tower_resilience_retry, tower_retry};
use peer_benches::inmemory::{runtime, time_calls};
use peer_benches::paired::{interleave, rounds, Contender};
use peer_benches::report;
use peer_benches::workload::{Answer, Script, Workload};
use tower_http_retry::backoff::Backoff;
use tower_http_retry::RetryPolicy;

use support::counting_alloc::CountingAllocator;
use support::measure::{counted, figures_dir, timed};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const GROUP: &str = "retry_path";
/// Interleaved rounds, and requests per contender per round.
const ROUNDS: usize = 31;
const BATCH: u64 = 5_000;
/// tower-resilience-retry sleeps even for a zero backoff, which waits for tokio's next timer tick
/// (about 1 ms): a smaller batch keeps its rounds short.
const SLEEPING_BATCH: u64 = 10;

/// No wait, and no retry budget: the other contenders have none, and a budget (10% of requests) would
/// refuse most of the retries this workload needs.
fn no_wait() -> RetryPolicy {
    RetryPolicy::default()
        .no_retry_budget()
        .backoff(Backoff::none())
}

fn main() {
    let workload = Workload::in_memory();
    let runtime = runtime();
    let answer = || Answer::new(Script::TwoUnavailableThenOk, &workload);

    let rows = [
        {
            let inner = answer();
            counted(
                "tower_retry",
                &runtime,
                &workload,
                &inner,
                tower_retry(inner.clone()),
                3,
            )
        },
        {
            let inner = answer();
            let service = tower_resilience_retry(inner.clone(), Duration::ZERO);
            counted(
                "tower_resilience_retry",
                &runtime,
                &workload,
                &inner,
                service,
                3,
            )
        },
        {
            let inner = answer();
            let service = tower_http_retry(inner.clone(), no_wait());
            counted("tower_http_retry", &runtime, &workload, &inner, service, 3)
        },
    ];
    let path = report::counted_file(figures_dir(), GROUP);
    report::write_counted(&path, GROUP, &rows).expect("the counted figures are written");

    let mut tower = tower_retry(answer());
    let mut resilience = tower_resilience_retry(answer(), Duration::ZERO);
    let mut ours = tower_http_retry(answer(), no_wait());
    let results = interleave(
        rounds(ROUNDS),
        &mut [
            Contender::new("tower_retry", BATCH, || {
                time_calls(&runtime, &mut tower, &workload, BATCH)
            }),
            Contender::new("tower_resilience_retry", SLEEPING_BATCH, || {
                time_calls(&runtime, &mut resilience, &workload, SLEEPING_BATCH)
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
