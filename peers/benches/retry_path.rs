//! Retry path, in memory: every request meets 503, 503, then 200, with no wait between attempts; the
//! time is per logical request (three inner calls). Counted like the success path before timing.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
#[path = "support/measure.rs"]
mod measure;

use std::time::Duration;

use criterion::Criterion;
use peer_benches::contenders::{tower_http_retry, tower_resilience_retry, tower_retry};
use peer_benches::inmemory::runtime;
use peer_benches::report;
use peer_benches::workload::{Answer, Script, Workload};
use tower_http_retry::backoff::Backoff;
use tower_http_retry::RetryPolicy;

use counting_alloc::CountingAllocator;
use measure::{counted, counted_path, timed};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const GROUP: &str = "retry_path";

fn no_wait() -> RetryPolicy {
    RetryPolicy::default().backoff(Backoff::none())
}

fn main() {
    let workload = Workload::in_memory();
    let runtime = runtime();
    let answer = || Answer::new(Script::TwoUnavailableThenOk, &workload);

    let mut rows = Vec::new();
    let inner = answer();
    rows.push(counted(
        "tower_retry",
        &runtime,
        &workload,
        &inner,
        tower_retry(inner.clone()),
        3,
    ));
    let inner = answer();
    let service = tower_resilience_retry(inner.clone(), Duration::ZERO);
    rows.push(counted(
        "tower_resilience_retry",
        &runtime,
        &workload,
        &inner,
        service,
        3,
    ));
    let inner = answer();
    let service = tower_http_retry(inner.clone(), no_wait());
    rows.push(counted(
        "tower_http_retry",
        &runtime,
        &workload,
        &inner,
        service,
        3,
    ));
    report::write(&counted_path(GROUP), GROUP, &rows).expect("the counted figures are written");

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group(GROUP);
    timed(
        &mut group,
        "tower_retry",
        &runtime,
        &workload,
        tower_retry(answer()),
    );
    let service = tower_resilience_retry(answer(), Duration::ZERO);
    timed(
        &mut group,
        "tower_resilience_retry",
        &runtime,
        &workload,
        service,
    );
    timed(
        &mut group,
        "tower_http_retry",
        &runtime,
        &workload,
        tower_http_retry(answer(), no_wait()),
    );
    group.finish();
    criterion.final_summary();
}
