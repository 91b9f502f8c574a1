//! Fleet mode: one retry budget and one throttle shared by many processes, in a store they all
//! reach (Redis).
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn demo() -> Result<(), tower_http_retry::store::StoreError> {
//! use tower_http_retry::budget::RetryBudget;
//! use tower_http_retry::store::Store;
//! use tower_http_retry::throttle::Throttle;
//! use tower_http_retry::RetryPolicy;
//!
//! // Every process of the fleet: the same URL and budget name.
//! let store = Store::redis("redis://:secret@redis.internal:6379")?;
//! let budget = RetryBudget::builder().ratio(0.1).store(&store, "orders-api").build();
//! let policy = RetryPolicy::default()
//!     .retry_budget(budget)
//!     .throttle(Throttle::new().store(&store));
//! # let _ = policy;
//! # Ok(())
//! # }
//! ```
//!
//! # What is shared
//!
//! A budget given a store counts requests and retries fleet-wide: deposits of every process go to
//! the store, and retries are drawn from it, so a fleet in an outage retries at most the ratio of
//! the fleet's requests (plus one floor), not the ratio once per process.
//!
//! A [throttle](crate::throttle::Throttle::store) given a store follows one schedule per quota
//! scope with the fleet: one rate, learned once and cut once per overshoot, and one hold when a
//! server says `Retry-After` (see [Fleets](crate::throttle#fleets)).
//!
//! # Off the hot path
//!
//! A request costs no call to the store: its deposit is one atomic addition, sent with the others
//! by a background task every 100 ms. Retries are drawn from a small lease (two retries' worth) the
//! task keeps filled; a retry that finds the lease empty is refused and asks for a refill.
//!
//! A throttle costs the store nothing while no server is engaged, and a request to an engaged
//! server no round trip of its own: it leaves on a slot leased ahead, and waits for a lease (at
//! most the timeout) only when the fleet has no slot ready for it.
//!
//! # When the store fails
//!
//! Every call to the store is bounded by a timeout (50 ms by default, [`Store::timeout`]). While
//! the store fails or is slow, each process falls back to its own budget and throttle (which learn
//! from the same requests all along): no request fails, and none waits on the store longer than the
//! timeout. One `tracing` warning marks
//! the start of an outage and one line its end; the task reconnects on its own.
//!
//! # Backends
//!
//! [`Store::local`] keeps the shared state in this process (the same semantics, for tests and for
//! sharing between runtimes); [`Store::redis`](Store) (cargo feature `redis`) keeps it in Redis, each
//! read-modify-write one Lua script timed by Redis's clock, keys under a prefix
//! ([`Store::prefix`]), each with its own hash tag (Redis Cluster), expiring on their own.
//!
//! # TLS
//!
//! With the cargo feature `redis-tls`, `rediss://` URLs connect over TLS (rustls, with the ring
//! provider unless the application installed another as rustls's process default), checking the
//! server's certificate against the system's trusted roots, or against a CA of your own with
//! `Store::redis_with_ca`. Certificate checks cannot be turned off (`#insecure` is refused).

mod account;
mod backend;
#[cfg(feature = "redis")]
mod connect;
mod error;
mod local;
#[cfg(feature = "redis")]
mod redis;
mod schedule;
mod sync;
#[cfg(all(test, feature = "redis"))]
mod twin;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::Notify;

pub(crate) use account::{Account, Settings as AccountSettings};
use backend::Backend;
pub(crate) use backend::{Refused, ScheduleCall, ScheduleReply, SlotSent};

/// A throttle, as the store's task sees it.
pub(crate) trait Engage: Send + Sync + 'static {
    /// The fleet has engaged these authorities (`scheme://host:port`).
    fn engage(&self, authorities: &[String]);
}
pub use error::StoreError;

/// The default bound on every call to the store.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
/// The default prefix of every key.
pub(crate) const DEFAULT_PREFIX: &str = "tower-http-retry";

/// Where a fleet's shared state lives; clones share one connection and one background task.
///
/// See the [module](self) for what is shared and how failures are handled.
///
/// ```
/// use tower_http_retry::budget::RetryBudget;
/// use tower_http_retry::store::Store;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Two budgets on one store with one name: one budget.
/// let store = Store::local();
/// let a = RetryBudget::builder().store(&store, "api").build();
/// let b = RetryBudget::builder().store(&store, "api").build();
/// # let _ = (a, b);
/// # }
/// ```
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    backend: Arc<dyn Backend>,
    /// Where it is, for `Debug` and logs: never with a password.
    shown: String,
    prefix: String,
    timeout: Duration,
    accounts: Mutex<Vec<Weak<Account>>>,
    /// Throttles following the fleet's schedules, told which servers the fleet has engaged.
    throttles: Mutex<Vec<Weak<dyn Engage>>>,
    /// Wakes the task before its next tick (a lease ran out).
    wake: Notify,
    /// Whether the last call failed: accounts then use their own budget.
    down: AtomicBool,
    spawned: AtomicBool,
}

impl Store {
    /// A store in this process: what budgets on it share, they share within the process only.
    ///
    /// ```
    /// use tower_http_retry::store::Store;
    ///
    /// let store = Store::local();
    /// # let _ = store;
    /// ```
    pub fn local() -> Self {
        Self::with(Arc::new(local::Local::new()), "local".to_owned())
    }

    /// A store in the Redis at `url`: `redis://[:password@]host[:port][/db]`, or
    /// `rediss://[:password@]host[:port][/db]` for TLS with the `redis-tls` feature (the server's
    /// certificate checked against the system's trusted roots; for a private CA see
    /// [`Store::redis_with_ca`](Store)). Without that feature a `rediss://` URL is an error here, as is
    /// the `#insecure` fragment (certificate checks cannot be turned off). It connects lazily and
    /// reconnects on its own; the URL's password never shows in `Debug`, errors or logs. Call within
    /// a tokio runtime.
    ///
    /// ```
    /// use tower_http_retry::store::Store;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = Store::redis("redis://:hunter2@127.0.0.1:6379/0").unwrap();
    /// assert!(!format!("{store:?}").contains("hunter2"));
    /// assert!(Store::redis("not a url").is_err());
    /// // TLS: only with the `redis-tls` feature.
    /// let tls = Store::redis("rediss://:hunter2@127.0.0.1:6380");
    /// assert_eq!(tls.is_ok(), cfg!(feature = "redis-tls"));
    /// # }
    /// ```
    #[cfg(feature = "redis")]
    pub fn redis(url: &str) -> Result<Self, StoreError> {
        let backend = redis::Redis::new(url, None, DEFAULT_TIMEOUT)?;
        Ok(Self::with(Arc::new(backend), redact(url)))
    }

    /// A store in the Redis at `url` (`rediss://`, TLS), trusting the CA certificate(s) in
    /// `ca_pem` (PEM) instead of the system's roots: for a Redis whose certificate a private CA
    /// signed. The certificate must name the URL's host. A `ca_pem` without a certificate, or a
    /// `redis://` URL, is an error.
    ///
    /// ```no_run
    /// use tower_http_retry::store::Store;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let ca = std::fs::read("/etc/redis/tls/ca.crt")?;
    /// let store = Store::redis_with_ca("rediss://:hunter2@redis.internal:6380", &ca)?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-tls")))]
    pub fn redis_with_ca(url: &str, ca_pem: &[u8]) -> Result<Self, StoreError> {
        let backend = redis::Redis::new(url, Some(ca_pem), DEFAULT_TIMEOUT)?;
        Ok(Self::with(Arc::new(backend), redact(url)))
    }

    fn with(backend: Arc<dyn Backend>, shown: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend,
                shown,
                prefix: DEFAULT_PREFIX.to_owned(),
                timeout: DEFAULT_TIMEOUT,
                accounts: Mutex::new(Vec::new()),
                throttles: Mutex::new(Vec::new()),
                wake: Notify::new(),
                down: AtomicBool::new(false),
                spawned: AtomicBool::new(false),
            }),
        }
    }

    /// Every key starts with `prefix` (default `tower-http-retry`), so that fleets share a Redis
    /// without sharing state. Set before making budgets on the store.
    ///
    /// ```
    /// use tower_http_retry::store::Store;
    ///
    /// let store = Store::local().prefix("billing");
    /// # let _ = store;
    /// ```
    pub fn prefix(self, prefix: &str) -> Self {
        self.reconfigured(|inner| inner.prefix = prefix.to_owned())
    }

    /// Bounds every call to the store, connecting (and a TLS handshake) included (default 50 ms;
    /// at least 1 ms): past it the processes use their own state until the store answers in time
    /// again. On Redis, set it before making budgets and throttles on the store: the store then
    /// connects anew with this bound.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::store::Store;
    ///
    /// let store = Store::local().timeout(Duration::from_millis(20));
    /// # let _ = store;
    /// ```
    pub fn timeout(self, timeout: Duration) -> Self {
        let timeout = timeout.max(Duration::from_millis(1));
        self.reconfigured(|inner| {
            inner.timeout = timeout;
            if let Some(backend) = inner.backend.with_timeout(timeout) {
                inner.backend = backend;
            }
        })
    }

    fn reconfigured(self, change: impl FnOnce(&mut Inner)) -> Self {
        let inner = &self.inner;
        let mut fresh = Inner {
            backend: inner.backend.clone(),
            shown: inner.shown.clone(),
            prefix: inner.prefix.clone(),
            timeout: inner.timeout,
            accounts: Mutex::new(Vec::new()),
            throttles: Mutex::new(Vec::new()),
            wake: Notify::new(),
            down: AtomicBool::new(false),
            spawned: AtomicBool::new(false),
        };
        change(&mut fresh);
        Self {
            inner: Arc::new(fresh),
        }
    }

    /// Whether the last call to the store failed or timed out (the processes then use their own
    /// state).
    ///
    /// ```
    /// use tower_http_retry::store::Store;
    ///
    /// assert!(!Store::local().is_down());
    /// ```
    pub fn is_down(&self) -> bool {
        self.inner.down.load(Ordering::Acquire)
    }

    /// The store itself, for a throttle's exchanges.
    pub(crate) fn inner(&self) -> Arc<Inner> {
        self.inner.clone()
    }

    /// An account for the budget `name`, synced by the store's task.
    pub(crate) fn account(&self, name: &str, settings: account::Settings) -> Arc<Account> {
        let key = format!("{{{}:budget:{}}}", self.inner.prefix, name);
        let account = Arc::new(Account::new(key, settings, self.inner.clone()));
        let mut accounts = self
            .inner
            .accounts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        accounts.retain(|a| a.strong_count() > 0);
        accounts.push(Arc::downgrade(&account));
        drop(accounts);
        self.inner.ensure_task();
        account
    }
}

impl Inner {
    /// The key of an authority's schedule (`scheme://host:port`), with its own hash tag.
    pub(crate) fn schedule_key(&self, authority: &str) -> String {
        format!("{{{}:throttle:{}}}", self.prefix, authority)
    }

    /// Marks `mark` (an authority, for this long) engaged fleet-wide, and answers the authorities
    /// engaged now; within the store's timeout.
    pub(crate) async fn engaged(
        &self,
        mark: Option<(&str, Duration)>,
    ) -> Result<Vec<String>, StoreError> {
        let index = format!("{{{}:throttles}}", self.prefix);
        let mark = mark.map(|(authority, for_)| {
            (
                authority,
                u64::try_from(for_.as_millis()).unwrap_or(u64::MAX),
            )
        });
        match tokio::time::timeout(self.timeout, self.backend.engaged(&index, mark)).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::new(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        }
    }

    /// Tells `throttle`, every tick, which servers the fleet has engaged.
    pub(crate) fn follow(self: &Arc<Self>, throttle: Weak<dyn Engage>) {
        let mut throttles = self
            .throttles
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        throttles.retain(|t| t.strong_count() > 0);
        throttles.push(throttle);
        drop(throttles);
        self.ensure_task();
    }

    /// How long a call to the store may take.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// One exchange with an authority's schedule, within the store's timeout; an outage is noted.
    pub(crate) async fn schedule(
        &self,
        key: &str,
        call: ScheduleCall,
    ) -> Result<ScheduleReply, StoreError> {
        let result =
            match tokio::time::timeout(self.timeout, self.backend.schedule(key, call)).await {
                Ok(result) => result,
                Err(_) => Err(StoreError::new(format!(
                    "no answer within {:?}",
                    self.timeout
                ))),
            };
        self.note(result.as_ref().err());
        result
    }

    /// Notes how the last call went: one warning when an outage starts, one line when it ends.
    pub(crate) fn note(&self, failure: Option<&StoreError>) {
        match failure {
            Some(error) => {
                if !self.down.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        store = %self.shown,
                        %error,
                        "fleet store unreachable: each process uses its own retry budget and throttle until it answers"
                    );
                }
            }
            None => {
                if self.down.swap(false, Ordering::AcqRel) {
                    tracing::info!(store = %self.shown, "fleet store answers again: shared state resumed");
                }
            }
        }
    }

    /// Starts the background task once, when a tokio runtime is at hand.
    pub(crate) fn ensure_task(self: &Arc<Self>) {
        if self.spawned.load(Ordering::Acquire) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current()
            && !self.spawned.swap(true, Ordering::AcqRel)
        {
            runtime.spawn(sync::run(Arc::downgrade(self)));
        }
    }
}

/// `url` without its password.
#[cfg(any(feature = "redis", test))]
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<invalid url>".to_owned();
    };
    match rest.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("at", &self.inner.shown)
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .field("down", &self.is_down())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://:hunter2@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(redact("rediss://user:p@ss@host"), "rediss://user:***@host");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact("hunter2"), "<invalid url>");
    }
}
