//! Success path, in memory: a service that answers 200 to a PUT with ten headers and a 1 KiB
//! `Full<Bytes>` body, bare and behind each retry layer, in one criterion group.
//!
//! Before timing, each contender is run under a counting allocator: allocations and bytes per request,
//! body bytes copied (the inner service checks that the body it reads is the original's memory), and
//! inner calls per request. `cargo run -p peer-benches --bin summary` tabulates both.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
#[path = "support/measure.rs"]
mod measure;

use criterion::Criterion;
use peer_benches::contenders::{tower_http_retry, tower_resilience_retry, tower_retry};
use peer_benches::inmemory::runtime;
use peer_benches::report::{self, Counted};
use peer_benches::workload::{Answer, Script, Workload};
use tower_http_retry::RetryPolicy;

use counting_alloc::{count, CountingAllocator};
use measure::{counted, counted_path, timed, COUNTED};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const GROUP: &str = "success_path";

/// What cloning one request head (method, URI, version, headers, extensions) allocates: the allowance
/// the success-path goal gives a retry layer over the bare service.
fn one_head_clone(workload: &Workload) -> Counted {
    let heads: Vec<http::request::Parts> = (0..COUNTED)
        .map(|_| workload.request().into_parts().0)
        .collect();
    let (copies, allocations) = count(|| heads.iter().map(Clone::clone).collect::<Vec<_>>());
    drop(copies);
    // The collected Vec is one allocation for all of them.
    let per_request = |n: u64| n as f64 / COUNTED as f64;
    Counted {
        contender: "one head clone".to_string(),
        allocations: per_request(allocations.count - 1),
        allocated_bytes: per_request(
            allocations.bytes - (COUNTED * std::mem::size_of::<http::request::Parts>()) as u64,
        ),
        copied_body_bytes: 0.0,
        inner_calls: 0.0,
    }
}

fn main() {
    let workload = Workload::in_memory();
    let runtime = runtime();
    let answer = || Answer::new(Script::AlwaysOk, &workload);
    let never_waits = std::time::Duration::from_millis(100);

    let mut rows = Vec::new();
    let inner = answer();
    rows.push(counted(
        "bare",
        &runtime,
        &workload,
        &inner,
        inner.clone(),
        1,
    ));
    let inner = answer();
    rows.push(counted(
        "tower_retry",
        &runtime,
        &workload,
        &inner,
        tower_retry(inner.clone()),
        1,
    ));
    let inner = answer();
    let service = tower_resilience_retry(inner.clone(), never_waits);
    rows.push(counted(
        "tower_resilience_retry",
        &runtime,
        &workload,
        &inner,
        service,
        1,
    ));
    let inner = answer();
    let service = tower_http_retry(inner.clone(), RetryPolicy::default());
    rows.push(counted(
        "tower_http_retry",
        &runtime,
        &workload,
        &inner,
        service,
        1,
    ));
    rows.push(one_head_clone(&workload));
    report::write(&counted_path(GROUP), GROUP, &rows).expect("the counted figures are written");

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group(GROUP);
    timed(&mut group, "bare", &runtime, &workload, answer());
    timed(
        &mut group,
        "tower_retry",
        &runtime,
        &workload,
        tower_retry(answer()),
    );
    let service = tower_resilience_retry(answer(), never_waits);
    timed(
        &mut group,
        "tower_resilience_retry",
        &runtime,
        &workload,
        service,
    );
    let service = tower_http_retry(answer(), RetryPolicy::default());
    timed(&mut group, "tower_http_retry", &runtime, &workload, service);
    group.finish();
    criterion.final_summary();
}
