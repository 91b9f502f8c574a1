//! The store's background task: every tick (or when a lease runs out) it sends each account's
//! deposits and refills its lease; it notes outages once, at their start and end.

use std::sync::atomic::Ordering;
use std::sync::{PoisonError, Weak};
use std::time::Duration;

use super::Inner;

/// How often deposits are sent and leases refilled.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// Runs until the store is dropped.
pub(crate) async fn run(inner: Weak<Inner>) {
    loop {
        let Some(store) = inner.upgrade() else {
            return;
        };
        let accounts: Vec<_> = {
            let accounts = store
                .accounts
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            accounts.iter().filter_map(Weak::upgrade).collect()
        };
        let mut failure = None;
        for account in &accounts {
            if let Err(error) = account.sync(&store).await {
                failure = Some(error);
                break;
            }
        }
        let was_down = store.down.load(Ordering::Acquire);
        match failure {
            Some(error) if !was_down => {
                store.down.store(true, Ordering::Release);
                tracing::warn!(
                    store = %store.shown,
                    %error,
                    "fleet store unreachable: each process uses its own retry budget until it answers"
                );
            }
            None if was_down => {
                store.down.store(false, Ordering::Release);
                tracing::info!(store = %store.shown, "fleet store answers again: shared budget resumed");
            }
            _ => {}
        }
        drop(accounts);
        // Waits without holding the store, so that dropping it ends the task.
        let wake = Weak::clone(&inner);
        drop(store);
        wait(wake).await;
    }
}

/// A tick, or a wake-up from an account whose lease ran out.
async fn wait(inner: Weak<Inner>) {
    let Some(store) = inner.upgrade() else {
        return;
    };
    let notified = store.wake.notified();
    tokio::pin!(notified);
    // The tick bounds the wait, and the store is held no longer than it.
    let _ = tokio::time::timeout(TICK, notified).await;
}
