//! The retry budget against tower's `TpsBudget` (same window, floor and ratio), side by side:
//! a deposit (every call pays it), a withdrawal, and deposits from two threads at once. Then fleet
//! mode: the in-memory success path with the default budget in the process against the same budget
//! on a Redis store (a redis-server of the benchmark's own), in interleaved rounds, then by criterion.
//!
//! `cargo bench -p peer-benches --bench budget`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use peer_benches::contenders::tower_http_retry;
use peer_benches::fleet::Fleet;
use peer_benches::inmemory::{runtime, time_calls};
use peer_benches::paired::{interleave, rounds, Contender};
use peer_benches::workload::{Answer, Script, Workload};
use tower::retry::budget::{Budget, TpsBudget};
use tower_http_retry::budget::RetryBudget;
use tower_http_retry::classify::RetryClass;
use tower_http_retry::RetryPolicy;

const WINDOW: Duration = Duration::from_secs(10);

fn ours(floor: u32) -> RetryBudget {
    RetryBudget::builder()
        .ratio(0.1)
        .floor(floor)
        .window(WINDOW)
        .build()
}

fn towers(floor: u32) -> TpsBudget {
    TpsBudget::new(WINDOW, floor / 10, 0.1)
}

fn deposit(c: &mut Criterion) {
    let mut group = c.benchmark_group("deposit");
    let budget = ours(10);
    group.bench_function("RetryBudget", |b| b.iter(|| black_box(&budget).deposit()));
    let tower = towers(10);
    group.bench_function("tower TpsBudget", |b| {
        b.iter(|| black_box(&tower).deposit())
    });
    group.finish();
}

fn withdraw(c: &mut Criterion) {
    // A floor large enough that every withdrawal of the run is granted.
    let mut group = c.benchmark_group("withdraw (granted)");
    let budget = ours(u32::MAX);
    group.bench_function("RetryBudget", |b| {
        b.iter(|| black_box(black_box(&budget).try_withdraw(RetryClass::Transient)))
    });
    let tower = towers(u32::MAX);
    group.bench_function("tower TpsBudget", |b| {
        b.iter(|| black_box(black_box(&tower).withdraw()))
    });
    group.finish();
}

/// Deposits from two threads at once; the time is per deposit.
fn contended_deposit(c: &mut Criterion) {
    let mut group = c.benchmark_group("deposit, 2 threads");
    fn run(iters: u64, deposit: &(dyn Fn() + Sync)) -> Duration {
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..iters / 2 {
                        deposit();
                    }
                });
            }
        });
        start.elapsed()
    }
    let budget = ours(10);
    group.bench_function("RetryBudget", |b| {
        b.iter_custom(|iters| run(iters, &|| black_box(&budget).deposit()))
    });
    let tower = towers(10);
    group.bench_function("tower TpsBudget", |b| {
        b.iter_custom(|iters| run(iters, &|| black_box(&tower).deposit()))
    });
    group.finish();
}

/// Interleaved rounds of fleet mode's success path, and requests per contender per round.
const FLEET_ROUNDS: usize = 31;
const FLEET_BATCH: u64 = 10_000;

/// The success path in memory (200 at once, the default policy), with the default budget in the
/// process and on Redis. Fleet mode's goal: at most 1.05 x in-process.
fn fleet_success_path(c: &mut Criterion) {
    const GROUP: &str = "fleet_success_path";
    // The store's default timeout.
    let Some(fleet) = Fleet::start(Duration::from_millis(50)) else {
        return;
    };
    let workload = Workload::in_memory();
    let runtime = runtime();
    let inner = Answer::new(Script::AlwaysOk, &workload);
    let policy = |budget: RetryBudget| RetryPolicy::default().retry_budget(budget);
    let mut in_process = tower_http_retry(inner.clone(), policy(RetryBudget::default()));
    let mut on_redis = tower_http_retry(inner.clone(), policy(fleet.budget.clone()));
    let results = interleave(
        rounds(FLEET_ROUNDS),
        &mut [
            Contender::new("in_process", FLEET_BATCH, || {
                time_calls(&runtime, &mut in_process, &workload, FLEET_BATCH)
            }),
            Contender::new("redis_store", FLEET_BATCH, || {
                time_calls(&runtime, &mut on_redis, &workload, FLEET_BATCH)
            }),
        ],
    );
    // Every request was answered once, and the store answered throughout.
    let requests = 2 * FLEET_BATCH as usize * results[0].per_round.len();
    assert_eq!(
        inner.counters().calls(),
        requests,
        "one inner call per request"
    );
    fleet.assert_up();
    let ratio = results[1].ratio_to(&results[0]);
    println!(
        "{GROUP}: redis_store {:.1} ns, in_process {:.1} ns per request (median of {} rounds); \
         redis_store / in_process {:.3} (quartiles {:.3}-{:.3})",
        results[1].ns(),
        results[0].ns(),
        results[0].per_round.len(),
        ratio.median,
        ratio.q1,
        ratio.q3,
    );

    let mut group = c.benchmark_group(GROUP);
    group.bench_function("in_process", |b| {
        b.iter_custom(|iters| time_calls(&runtime, &mut in_process, &workload, iters))
    });
    group.bench_function("redis_store", |b| {
        b.iter_custom(|iters| time_calls(&runtime, &mut on_redis, &workload, iters))
    });
    group.finish();
    fleet.assert_up();
}

criterion_group!(
    benches,
    deposit,
    withdraw,
    contended_deposit,
    fleet_success_path
);
criterion_main!(benches);
