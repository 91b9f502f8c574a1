//! Fleet mode's contender: the retry budget on a Redis store, the rest as in-process.
//!
//! The store's background task (batched deposits every 100 ms, the lease of retries) runs on a
//! runtime of its own with one worker thread, as it would beside an application's client: the
//! in-memory benchmarks time the calling thread's CPU and callgrind counts the calling function
//! only, so the figures are the request path's, and what fleet mode adds to it is what they show.

use std::time::Duration;

use tokio::runtime::{Builder, Runtime};
use tower_http_retry::budget::RetryBudget;
use tower_http_retry::store::Store;

use crate::redis_server::RedisServer;

/// Long enough for the store's task to have synced a few times (it ticks every 100 ms).
const SYNCED: Duration = Duration::from_millis(350);

/// A budget with the default settings on a Redis store of its own.
pub struct Fleet {
    /// The budget: `RetryBudget`'s defaults, shared through the store under one name.
    pub budget: RetryBudget,
    store: Store,
    // Dropped after the budget and the store: the task ends, then the runtime, then Redis.
    _background: Runtime,
    _server: RedisServer,
}

impl Fleet {
    /// Starts a redis-server and a store on it whose calls are bounded by `timeout` (the store's
    /// default is 50 ms), and waits until the store has answered; `None` when redis-server is not
    /// installed (see [`crate::redis_server::installed`]).
    pub fn start(timeout: Duration) -> Option<Self> {
        let server = RedisServer::start()?;
        let background = Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        // Made inside the background runtime: the store's connection and task live there.
        let (store, budget) = {
            let _entered = background.enter();
            let store = Store::redis(&server.url())
                .expect("a redis:// URL")
                .timeout(timeout);
            let budget = RetryBudget::builder().store(&store, "bench").build();
            (store, budget)
        };
        std::thread::sleep(SYNCED);
        let fleet = Self {
            budget,
            store,
            _background: background,
            _server: server,
        };
        fleet.assert_up();
        Some(fleet)
    }

    /// Fails unless the store answers (its task calls it every 100 ms) within 5 s: a figure taken
    /// while it is down measures the fall-back, not fleet mode. A call that failed once, on a
    /// loaded machine or under valgrind, is forgiven when the next one answers.
    pub fn assert_up(&self) {
        for _ in 0..50 {
            if !self.store.is_down() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the Redis store does not answer");
    }
}
