//! A budget's account in a store: deposits waiting to be sent, and the lease of retries drawn.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::backend::BudgetCall;
use super::error::StoreError;
use super::Inner;

/// The budget's settings, in the budget's fixed-point units.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) floor: u64,
    pub(crate) per_deposit: u64,
    pub(crate) window: Duration,
    /// Units the lease is kept filled to.
    pub(crate) lease: u64,
}

/// One budget of one process, as the store's task sees it.
pub(crate) struct Account {
    key: String,
    settings: Settings,
    /// Requests counted and not sent yet: the only thing a request touches.
    unsent: AtomicU64,
    lease: Mutex<Lease>,
    /// Kept alive by its budgets: the store's task runs while a budget uses it.
    store: Arc<Inner>,
}

/// Units granted by the store and not spent yet; they were counted as withdrawn in the store's
/// window when granted, so they are dropped when that window has passed.
#[derive(Default)]
struct Lease {
    units: u64,
    expires: Option<Instant>,
}

impl Account {
    pub(crate) fn new(key: String, settings: Settings, store: Arc<Inner>) -> Self {
        Self {
            key,
            settings,
            unsent: AtomicU64::new(0),
            lease: Mutex::new(Lease::default()),
            store,
        }
    }

    /// Counts one request: one atomic addition.
    pub(crate) fn deposit(&self) {
        self.unsent.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the store answers: otherwise the process's own budget decides.
    pub(crate) fn is_online(&self) -> bool {
        !self.store.down.load(Ordering::Acquire)
    }

    /// Takes `cost` units from the lease; when it falls short, asks the task for a refill and
    /// refuses (the store is never waited for).
    pub(crate) fn take(&self, cost: u64) -> bool {
        let mut lease = self.lease(Instant::now());
        if lease.units >= cost {
            lease.units -= cost;
            return true;
        }
        drop(lease);
        self.store.ensure_task();
        self.store.wake.notify_one();
        false
    }

    /// Gives back units taken for a retry that was never sent.
    pub(crate) fn give_back(&self, cost: u64) {
        let mut lease = self.lease(Instant::now());
        if lease.expires.is_some() {
            lease.units = lease.units.saturating_add(cost);
        }
    }

    /// The lease, emptied if its window has passed.
    fn lease(&self, now: Instant) -> MutexGuard<'_, Lease> {
        let mut lease = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        if lease.expires.is_some_and(|at| at <= now) {
            *lease = Lease::default();
        }
        lease
    }

    /// Sends the deposits and refills the lease, within the store's timeout. Deposits that could
    /// not be sent are dropped: the process's own budget counted them, and it decides meanwhile.
    pub(crate) async fn sync(&self, store: &Inner) -> Result<(), StoreError> {
        let deposits = self.unsent.swap(0, Ordering::AcqRel);
        let want = {
            let lease = self.lease(Instant::now());
            self.settings.lease.saturating_sub(lease.units)
        };
        if deposits == 0 && want == 0 {
            return Ok(());
        }
        let call = BudgetCall {
            deposits,
            want,
            floor: self.settings.floor,
            per_deposit: self.settings.per_deposit,
            window_ms: u64::try_from(self.settings.window.as_millis())
                .unwrap_or(u64::MAX)
                .max(10),
        };
        let reply = tokio::time::timeout(store.timeout, store.backend.budget(&self.key, call))
            .await
            .map_err(|_| StoreError::new(format!("no answer within {:?}", store.timeout)))??;
        if reply.granted > 0 {
            let now = Instant::now();
            let mut lease = self.lease(now);
            if lease.expires.is_none() {
                lease.expires = now.checked_add(self.settings.window);
            }
            lease.units = lease.units.saturating_add(reply.granted);
        }
        Ok(())
    }
}
