//! Fleet mode: budgets on one store share one budget; the same behaviour tests run against the
//! in-process store and, with the `redis` feature, against a real redis-server (with its faults).

use std::time::Duration;

use tower_http_retry::budget::RetryBudget;
use tower_http_retry::classify::RetryClass;
use tower_http_retry::store::Store;

#[cfg(feature = "redis")]
use crate::redis_server;

pub(crate) const T: RetryClass = RetryClass::Transient;
/// Long enough for the store's task to sync a few times (it ticks every 100 ms).
const SYNC: Duration = Duration::from_millis(350);

pub(crate) fn budget(store: &Store, name: &str, floor: u32, ratio: f64) -> RetryBudget {
    RetryBudget::builder()
        .floor(floor)
        .ratio(ratio)
        .store(store, name)
        .build()
}

/// Withdraws from every budget until none grants more, letting leases refill in between.
pub(crate) async fn drain(budgets: &[RetryBudget]) -> usize {
    let mut granted = 0;
    for _ in 0..4 {
        tokio::time::sleep(SYNC).await;
        for budget in budgets {
            while budget.try_withdraw(T) {
                granted += 1;
            }
        }
    }
    granted
}

/// Four processes' budgets, one name: the fleet's deposits fund the fleet's retries, once.
async fn the_fleet_shares_one_budget(store: Store) {
    let fleet: Vec<_> = (0..4).map(|_| budget(&store, "api", 2, 0.1)).collect();
    for budget in &fleet {
        for _ in 0..50 {
            budget.deposit();
        }
    }
    // floor 2 + 10% of 200 requests: 22 retries in all, not 4 x (2 + 5) = 28.
    assert_eq!(drain(&fleet).await, 22);
    // Another name is another budget.
    let other = budget(&store, "other", 1, 0.0);
    assert_eq!(drain(&[other]).await, 1);
}

/// A retry planned and never sent gives its lease back.
async fn an_unsent_retry_is_given_back(store: Store) {
    let lone = budget(&store, "lone", 1, 0.0);
    tokio::time::sleep(SYNC).await;
    assert!(lone.try_withdraw(T));
    assert!(!lone.try_withdraw(T));
    assert_eq!(drain(&[lone]).await, 0);
}

#[tokio::test]
async fn local_store_shares_one_budget() {
    the_fleet_shares_one_budget(Store::local()).await;
}

#[tokio::test]
async fn local_store_floor_and_lease() {
    an_unsent_retry_is_given_back(Store::local()).await;
}

#[cfg(feature = "redis")]
mod redis {
    use super::redis_server::RedisServer;
    use super::*;

    fn store(server: &RedisServer, prefix: &str) -> Store {
        Store::redis(&server.url()).unwrap().prefix(prefix)
    }

    #[tokio::test]
    async fn redis_store_shares_one_budget() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        the_fleet_shares_one_budget(store(&server, "shares")).await;
        an_unsent_retry_is_given_back(store(&server, "lease")).await;
    }

    #[tokio::test]
    async fn two_stores_on_one_redis_are_one_fleet_and_prefixes_separate_fleets() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        // Two processes: two stores, each with its own connection and task.
        // One floor for the fleet: alone, each would grant its own.
        let a = budget(&store(&server, "p"), "api", 1, 0.0);
        let b = budget(&store(&server, "p"), "api", 1, 0.0);
        let elsewhere = budget(&store(&server, "q"), "api", 1, 0.0);
        assert_eq!(drain(&[a, b]).await, 1);
        assert_eq!(drain(&[elsewhere]).await, 1);
    }

    #[tokio::test]
    async fn keys_carry_one_hash_tag_and_expire_on_their_own() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let budget = budget(&store(&server, "tags"), "api", 1, 0.1);
        budget.deposit();
        tokio::time::sleep(SYNC).await;
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &server.port.to_string(), "--scan"])
            .output();
        let Ok(out) = out else {
            return; // no redis-cli: the key's shape is checked by the other tests' sharing
        };
        let keys = String::from_utf8(out.stdout).unwrap();
        assert_eq!(keys.trim(), "{tags:budget:api}");
        let ttl = std::process::Command::new("redis-cli")
            .args(["-p", &server.port.to_string(), "PTTL", "{tags:budget:api}"])
            .output()
            .unwrap();
        let ttl: i64 = String::from_utf8(ttl.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(ttl > 0 && ttl <= 20_000, "{ttl}");
    }

    #[tokio::test]
    async fn a_longer_timeout_waits_longer_for_redis() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let store = store(&server, "patient").timeout(Duration::from_secs(2));
        let budget = budget(&store, "api", 1, 0.1);
        budget.deposit();
        tokio::time::sleep(SYNC).await;
        assert!(!store.is_down());
        // Paused for 300 ms, past the default 50 ms and within the 2 s given: calls wait for it.
        server.pause(true);
        budget.deposit();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let waited = !store.is_down();
        server.pause(false);
        assert!(waited, "the store's timeout is 2 s, not 50 ms");
        tokio::time::sleep(SYNC).await;
        assert!(!store.is_down());
    }

    #[tokio::test]
    async fn the_longest_timeout_is_a_bound_like_any_other() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        // Duration::MAX reaches the connection's own bounds too: no arithmetic on it may panic.
        let store = store(&server, "forever").timeout(Duration::MAX);
        let budget = budget(&store, "api", 1, 0.1);
        budget.deposit();
        assert_eq!(drain(std::slice::from_ref(&budget)).await, 1);
        assert!(!store.is_down());
    }

    #[tokio::test]
    async fn an_unreachable_redis_falls_back_to_the_process_budget() {
        // Nothing listens there: every call fails, and the budget decides alone.
        let store = Store::redis("redis://127.0.0.1:1").unwrap();
        let alone = budget(&store, "api", 3, 0.0);
        tokio::time::sleep(SYNC).await;
        assert!(store.is_down());
        let granted = (0..10).filter(|_| alone.try_withdraw(T)).count();
        assert_eq!(granted, 3, "the process's own floor");
    }

    #[tokio::test]
    async fn redis_killed_and_restarted_then_paused_past_the_timeout() {
        let Some(mut server) = RedisServer::start() else {
            return;
        };
        let store = store(&server, "faults");
        let shared = budget(&store, "api", 1, 0.0);
        tokio::time::sleep(SYNC).await;
        assert!(!store.is_down());
        assert!(shared.try_withdraw(T), "the fleet's floor");
        assert_eq!(
            drain(std::slice::from_ref(&shared)).await,
            0,
            "spent fleet-wide"
        );

        // Killed: the process's own budget (its own floor of 1) decides.
        server.kill();
        tokio::time::sleep(SYNC).await;
        assert!(store.is_down());
        assert!(shared.try_withdraw(T));
        assert!(!shared.try_withdraw(T));

        // Restarted (empty): the shared budget resumes on its own.
        server.restart();
        tokio::time::sleep(SYNC * 2).await;
        assert!(!store.is_down());
        assert_eq!(
            drain(std::slice::from_ref(&shared)).await,
            1,
            "a fresh fleet floor"
        );

        // Paused past the timeout: down, and no withdrawal waits for it.
        server.pause(true);
        tokio::time::sleep(SYNC).await;
        assert!(store.is_down());
        let started = std::time::Instant::now();
        for _ in 0..100 {
            let _ = shared.try_withdraw(T);
            shared.deposit();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "never waits on Redis"
        );
        server.pause(false);
        tokio::time::sleep(SYNC * 2).await;
        assert!(!store.is_down(), "resumed after SIGCONT");
    }
}
