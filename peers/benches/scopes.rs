//! The cost of finding a request's scope among engaged ones: the in-memory success path (200 at once,
//! the default policy with a shared `Throttle`) for a request whose scope is not throttled, while
//! (a) no scope is engaged, (b) one other scope is, (c) 1,000 other scopes are. The scopes are engaged
//! through the public API, a one-hour hold on requests that each carry an `x-api-key` of their own; the
//! measured requests carry none (their scope is the server and their `Authorization` header).
//!
//! While no scope is engaged a call pays one atomic load; once one is, every call looks its own scope
//! up (a hash of the server and the credential headers, one shard's lock, a map probe) when it is sent
//! and again when its answer comes. The goal: the same cost among 1,000 engaged scopes as among one,
//! and at most 2 x the cost with none engaged. Interleaved rounds, then criterion. The benchmark fails,
//! in quick test mode too, when the interleaved ratios are clearly past the goal: 1,000 engaged over
//! none above 2 x, or 1,000 engaged over one above 1.5 x, in three rounds out of four (the lower
//! quartile past the limit). The median of the first sits near its limit (1.75 to 1.99 on a shared
//! 2-core machine), so a check on the median would fail by chance; BENCHMARKS.md reports it.
//!
//! `cargo bench -p peer-benches --bench scopes`

use std::time::Duration;

use criterion::Criterion;
use http::{HeaderValue, StatusCode};
use peer_benches::contenders::tower_http_retry;
use peer_benches::inmemory::{call_all, runtime, time_calls};
use peer_benches::paired::{interleave, quick_test_mode, Contender};
use peer_benches::workload::{Answer, Script, Workload};
use tower_http_retry::throttle::Throttle;
use tower_http_retry::RetryPolicy;

const GROUP: &str = "scopes";
/// Interleaved rounds, and requests per setting per round; fewer in quick test mode, still enough
/// rounds for the check's median to hold still.
const ROUNDS: usize = 31;
const BATCH: u64 = 10_000;
const QUICK_ROUNDS: usize = 11;
const QUICK_BATCH: u64 = 2_000;
/// The engaged scopes of setting (c).
const MANY: usize = 1_000;
/// Longer than any run: a held scope stays engaged (never swept as quiet) throughout.
const HOLD: Duration = Duration::from_secs(3600);
/// The goal: a call among 1,000 engaged scopes costs at most this many times a call with none.
const MAX_RATIO: f64 = 2.0;
/// The same cost among 1,000 engaged scopes as among one, with room for noise: a cost that grew
/// with the engaged scopes (a lock or a walk over the whole map) would be far past it.
const MAX_MANY_TO_ONE: f64 = 1.5;
/// Requests checked for their outcome before the timing.
const CHECKED: usize = 1_000;

/// A throttle with `n` scopes engaged, each by a hold on a request with an `x-api-key` of its own.
fn engaged(workload: &Workload, n: usize) -> Throttle {
    let throttle = Throttle::new();
    for i in 0..n {
        let mut request = workload.request();
        let key = HeaderValue::from_str(&format!("key-{i:04}")).expect("a valid value");
        request.headers_mut().insert("x-api-key", key);
        throttle.hold(&request, HOLD);
    }
    assert_eq!(throttle.scopes(), n, "one engaged scope per key");
    throttle
}

fn main() {
    let workload = Workload::in_memory();
    assert!(
        workload.request().headers().get("x-api-key").is_none(),
        "the measured requests carry no x-api-key: their scope is none of the engaged ones"
    );
    let runtime = runtime();
    let settings = [
        ("none_engaged", engaged(&workload, 0)),
        ("one_engaged", engaged(&workload, 1)),
        ("1000_engaged", engaged(&workload, MANY)),
    ];
    let inners: Vec<Answer> = settings
        .iter()
        .map(|_| Answer::new(Script::AlwaysOk, &workload))
        .collect();
    let mut services: Vec<_> = settings
        .iter()
        .zip(&inners)
        .map(|((_, throttle), inner)| {
            let policy = RetryPolicy::default().throttle(throttle.clone());
            tower_http_retry(inner.clone(), policy)
        })
        .collect();

    // Every request ends in 200 after one inner call, no body byte copied, and no scope is engaged or
    // forgotten by them.
    for (((name, throttle), inner), service) in settings.iter().zip(&inners).zip(&mut services) {
        let requests = (0..CHECKED).map(|_| workload.request()).collect();
        let mut failures = 0usize;
        call_all(&runtime, service, requests, |response| {
            failures += usize::from(response.status() != StatusCode::OK);
        });
        assert_eq!(failures, 0, "{name}: every request ends in 200");
        assert_eq!(
            inner.counters().calls(),
            CHECKED,
            "{name}: one inner call per request"
        );
        assert_eq!(
            inner.counters().copied_bytes(),
            0,
            "{name}: no body byte copied"
        );
        assert_eq!(
            throttle.rate(&workload.request()),
            None,
            "{name}: the measured scope is not throttled"
        );
    }
    let engaged_now = || settings.iter().map(|(_, t)| t.scopes()).collect::<Vec<_>>();
    assert_eq!(
        engaged_now(),
        [0, 1, MANY],
        "the engaged scopes stay as they were"
    );

    let (rounds, batch) = match quick_test_mode() {
        true => (QUICK_ROUNDS, QUICK_BATCH),
        false => (ROUNDS, BATCH),
    };
    let [none, one, many] = &mut services[..] else {
        unreachable!("three settings")
    };
    let results = interleave(
        rounds,
        &mut [
            Contender::new(settings[0].0, batch, || {
                time_calls(&runtime, none, &workload, batch)
            }),
            Contender::new(settings[1].0, batch, || {
                time_calls(&runtime, one, &workload, batch)
            }),
            Contender::new(settings[2].0, batch, || {
                time_calls(&runtime, many, &workload, batch)
            }),
        ],
    );
    assert_eq!(
        engaged_now(),
        [0, 1, MANY],
        "the engaged scopes stay as they were"
    );
    let one_ratio = results[1].ratio_to(&results[0]);
    let many_ratio = results[2].ratio_to(&results[0]);
    let many_to_one = results[2].ratio_to(&results[1]);
    println!(
        "{GROUP}: CPU ns per request (median of {rounds} rounds of {batch}): none_engaged {:.1}, \
         one_engaged {:.1}, 1000_engaged {:.1}; one / none {:.3} (quartiles {:.3}-{:.3}), \
         1000 / none {:.3} (quartiles {:.3}-{:.3}), 1000 / one {:.3} (quartiles {:.3}-{:.3})",
        results[0].ns(),
        results[1].ns(),
        results[2].ns(),
        one_ratio.median,
        one_ratio.q1,
        one_ratio.q3,
        many_ratio.median,
        many_ratio.q1,
        many_ratio.q3,
        many_to_one.median,
        many_to_one.q1,
        many_to_one.q3,
    );

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group(GROUP);
    for ((name, _), service) in settings.iter().zip(&mut services) {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| time_calls(&runtime, service, &workload, iters))
        });
    }
    group.finish();
    criterion.final_summary();
    assert_eq!(
        engaged_now(),
        [0, 1, MANY],
        "the engaged scopes stay as they were"
    );

    // Past the limit in three rounds out of four, not by the median: see the module's documentation.
    assert!(
        many_ratio.q1 <= MAX_RATIO,
        "{GROUP}: a call among {MANY} engaged scopes costs {:.3} x a call with none engaged \
         (median of {rounds} interleaved rounds; quartiles {:.3}-{:.3}): the goal is at most {MAX_RATIO} x",
        many_ratio.median,
        many_ratio.q1,
        many_ratio.q3,
    );
    assert!(
        many_to_one.q1 <= MAX_MANY_TO_ONE,
        "{GROUP}: a call among {MANY} engaged scopes costs {:.3} x a call among one \
         (median of {rounds} interleaved rounds; quartiles {:.3}-{:.3}): the goal is the same cost",
        many_to_one.median,
        many_to_one.q1,
        many_to_one.q3,
    );
}
