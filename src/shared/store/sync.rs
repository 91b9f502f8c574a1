//! The store's background task: every tick (or when a lease runs out) it sends each account's
//! deposits and refills its lease, and tells each throttle which servers the fleet has engaged; it
//! notes outages once, at their start and end.

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
        let throttles: Vec<_> = {
            let throttles = store
                .throttles
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            throttles.iter().filter_map(Weak::upgrade).collect()
        };
        if !throttles.is_empty() && failure.is_none() {
            match store.engaged(None).await {
                Ok(authorities) => {
                    for throttle in &throttles {
                        throttle.engage(&authorities);
                    }
                }
                Err(error) => failure = Some(error),
            }
        }
        // With nothing on the store there was no call: nothing to note.
        if !accounts.is_empty() || !throttles.is_empty() {
            store.note(failure.as_ref());
        }
        drop(throttles);
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
