//! The retry budget against tower's `TpsBudget` (same window, floor and ratio), side by side:
//! a deposit (every call pays it), a withdrawal, and deposits from two threads at once.
//!
//! `cargo bench -p peer-benches --bench budget`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use tower::retry::budget::{Budget, TpsBudget};
use tower_http_retry::budget::RetryBudget;
use tower_http_retry::classify::RetryClass;

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

criterion_group!(benches, deposit, withdraw, contended_deposit);
criterion_main!(benches);
