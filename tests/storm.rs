//! Storm control, measured on an in-memory server model under tokio's paused clock, seeded: the retry
//! budget, jitter against a herd, the throttle, and the budget's accounting under contention.

// `tests/model/mod.rs`: a directory, so that cargo does not take it for a test of its own.
mod model;

use durations::secs;
use retry_test_support::durations;
use std::sync::Arc;
use std::time::Duration;

use model::{attempts_per_request, busiest_over_mean, drive, spread, Behaviour, Model};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::budget::RetryBudget;
use tower_http_retry::classify::RetryClass;
use tower_http_retry::history::StopReason;
use tower_http_retry::throttle::Throttle;
use tower_http_retry::{RetryLayer, RetryPolicy};

#[tokio::test(start_paused = true)]
async fn a_storm_of_503s_costs_at_most_1_15_attempts_per_request_with_the_default_budget() {
    let model = Model::new(Behaviour::FailRate(1.0), 1);
    let layer = RetryLayer::new(RetryPolicy::default().seed(1));
    let ended = drive(layer, &model, &spread(10_000, secs(60))).await;

    let cost = attempts_per_request(&ended);
    assert!(cost <= 1.15, "{cost:.3} attempts per request");
    // The floor and the 10% are spent, not left unused: every retry the budget allows is made.
    assert!(cost >= 1.09, "{cost:.3} attempts per request");
    let refused = ended
        .iter()
        .filter(|e| e.stop == Some(StopReason::BudgetExhausted))
        .count();
    assert!(refused > 9_000, "{refused} requests stopped by the budget");
    // Every one of them returned the server's last response.
    assert!(ended.iter().all(|e| e.status == Some(503)));
}

#[tokio::test(start_paused = true)]
async fn without_a_budget_the_same_storm_costs_four_attempts_per_request() {
    let model = Model::new(Behaviour::FailRate(1.0), 1);
    let layer = RetryLayer::new(RetryPolicy::default().no_retry_budget().seed(1));
    let ended = drive(layer, &model, &spread(2_000, secs(12))).await;
    assert_eq!(attempts_per_request(&ended), 4.0);
}

#[tokio::test(start_paused = true)]
async fn a_lone_failing_request_gets_all_its_retries_from_the_default_budget() {
    let model = Model::new(Behaviour::FailRate(1.0), 2);
    let layer = RetryLayer::new(RetryPolicy::default().seed(2));
    let ended = drive(layer, &model, &[Duration::ZERO]).await;
    assert_eq!(ended[0].attempts, 4);
    assert_eq!(ended[0].stop, Some(StopReason::AttemptsExhausted));
}

/// The retries of 1000 requests whose first attempts all fail at the same instant.
async fn herd(jitter: Jitter) -> Vec<Duration> {
    let model = Model::new(Behaviour::FirstAttemptFails, 3);
    let policy = RetryPolicy::default()
        .backoff(Backoff::default().jitter(jitter))
        .no_retry_budget()
        .seed(3);
    let ended = drive(RetryLayer::new(policy), &model, &[Duration::ZERO; 1000]).await;
    assert!(ended
        .iter()
        .all(|e| e.status == Some(200) && e.attempts == 2));
    model.retry_times()
}

#[tokio::test(start_paused = true)]
async fn full_jitter_spreads_a_herd_to_at_most_1_5_times_the_mean() {
    let retries = herd(Jitter::Full).await;
    assert_eq!(retries.len(), 1000);
    let peak = busiest_over_mean(&retries, Duration::from_millis(100));
    assert!(peak <= 1.5, "busiest 100 ms window: {peak:.2}x the mean");

    // The measure sees a herd when there is one: without jitter all 1000 land in one window.
    let retries = herd(Jitter::None).await;
    let peak = busiest_over_mean(&retries, Duration::from_millis(100));
    assert!(
        peak >= 2.9,
        "busiest 100 ms window without jitter: {peak:.2}x"
    );
}

/// 60 requests, 20 a second for 3 s, against a server that admits 10 a second; throttled requests
/// may try up to 10 times, without a budget, so that every request completes either way.
async fn against_a_rate_limit(advertise: bool, throttle: Option<Throttle>) -> (usize, usize) {
    let behaviour = Behaviour::RateLimited {
        per_second: 10,
        advertise,
    };
    let model = Model::new(behaviour, 4);
    let mut policy = RetryPolicy::default()
        .max_attempts_for(RetryClass::Throttling, 10)
        .no_retry_budget()
        .seed(4);
    policy = match throttle {
        Some(throttle) => policy.throttle(throttle),
        None => policy.no_throttle(),
    };
    let ended = drive(RetryLayer::new(policy), &model, &spread(60, secs(3))).await;
    let completed = ended.iter().filter(|e| e.succeeded()).count();
    (completed, model.count(429))
}

#[tokio::test(start_paused = true)]
async fn the_throttle_means_fewer_429s_for_the_same_completed_requests() {
    // A server that only answers 429 with Retry-After, and one that also advertises its quota.
    for advertise in [false, true] {
        let (completed_without, throttled_without) = against_a_rate_limit(advertise, None).await;
        let (completed_with, throttled_with) =
            against_a_rate_limit(advertise, Some(Throttle::new())).await;
        assert_eq!(completed_without, 60);
        assert_eq!(completed_with, completed_without);
        assert!(
            throttled_with < throttled_without,
            "advertise {advertise}: 429s: {throttled_with} with the throttle, {throttled_without} without"
        );
    }
}

#[test]
fn the_budget_never_overdraws_under_8_threads() {
    const THREADS: u64 = 8;
    const OPERATIONS: u64 = 100_000;
    const FLOOR: u64 = 10;
    // An hour-long window: nothing leaves it during the test, so every grant must be funded by the
    // floor or by a deposit made before it, whatever the interleaving.
    let budget = RetryBudget::builder()
        .ratio(0.1)
        .floor(FLOOR as u32)
        .window(secs(3600))
        .build();
    let start = Arc::new(std::sync::Barrier::new(THREADS as usize));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let budget = budget.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let (mut deposits, mut granted) = (0u64, 0u64);
                for i in 0..OPERATIONS {
                    // One deposit for three withdrawal attempts: the budget is at its edge all along.
                    if (i + t) % 4 == 0 {
                        budget.deposit();
                        deposits += 1;
                    } else if budget.try_withdraw(RetryClass::Transient) {
                        granted += 1;
                    }
                }
                (deposits, granted)
            })
        })
        .collect();
    let (deposits, mut granted) = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |(d, g), (td, tg)| (d + td, g + tg));
    assert_eq!(deposits, THREADS * OPERATIONS / 4);

    let allowed = FLOOR + deposits / 10;
    assert!(
        granted <= allowed,
        "{granted} retries granted, {allowed} allowed"
    );
    // And nothing was lost: what is left can still be withdrawn, up to exactly what was allowed.
    while budget.try_withdraw(RetryClass::Transient) {
        granted += 1;
    }
    assert_eq!(granted, allowed);
}
