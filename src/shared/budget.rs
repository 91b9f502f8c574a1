//! A retry budget: retries limited to a fraction of requests, so an outage does not become a load spike.
//!
//! ```
//! use std::time::Duration;
//! use tower_http_retry::budget::RetryBudget;
//! use tower_http_retry::classify::RetryClass;
//! use tower_http_retry::{RetryLayer, RetryPolicy};
//!
//! // One budget for two layers (two clients of the same backend): together they retry at most
//! // 20% of their requests, plus 5 retries in any 10 s whatever the traffic.
//! let budget = RetryBudget::builder()
//!     .ratio(0.2)
//!     .floor(5)
//!     .window(Duration::from_secs(10))
//!     .build();
//! let reads = RetryLayer::new(RetryPolicy::default().retry_budget(budget.clone()));
//! let writes = RetryLayer::new(RetryPolicy::default().retry_budget(budget.clone()));
//!
//! // The budget can also be used by hand: a deposit per request, a withdrawal per retry.
//! budget.deposit();
//! assert!(budget.try_withdraw(RetryClass::Transient));
//! # let _ = (reads, writes);
//! ```
//!
//! Without a budget, a policy of "4 attempts" turns a server that fails everything into four times its
//! usual load, from every client at once. With the default budget (10% of requests over a 10 s window,
//! the per-client budget of Google's SRE book, "Handling Overload") a fleet adds at most about 10% to
//! the load whatever the failure rate, while a lone failing request still gets all its retries from the
//! [floor](RetryBudgetBuilder::floor).
//!
//! # How it counts
//!
//! Every call deposits one request when it starts; every retry withdraws its class's
//! [cost](RetryBudgetBuilder::cost) (1 by default). A withdrawal is granted while
//!
//! ```text
//! retries in the window + cost <= floor + ratio * requests in the window
//! ```
//!
//! The window slides in ten steps: deposits and withdrawals older than the window are forgotten. Time is
//! read from tokio's clock, so the budget follows `tokio::time::pause()` and `advance()`.
//!
//! A deposit is one atomic addition: deposits are credited to the window in batches, when 16 have
//! accumulated or when a retry is asked for, so only one deposit in 16 reads the clock. A deposit can
//! thus be credited up to 15 deposits late, which at worst keeps it in the window that much longer (at
//! low traffic, at most 16 deposits' worth: 1.6 retries at the default ratio). No lock is taken and
//! nothing is allocated. A
//! withdrawal is a compare-and-swap on a single counter, so concurrent withdrawals can never both take
//! the last retry: whatever the interleaving, the retries granted within a window never exceed
//! `floor + ratio * deposits`. At the instant a step of the window expires, a deposit made by a racing
//! thread may be lost; the budget errs on the side of fewer retries.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::classify::RetryClass;
use crate::shared::store::{self, Account, Store};

/// The default share of requests that may be retried: 10%, the per-client retry budget of Google's SRE
/// book ("Handling Overload").
pub(crate) const DEFAULT_RATIO: f64 = 0.1;
/// The default number of retries every window allows whatever the traffic: 10, so a lone failing
/// request (3 retries by default) always gets its retries, while a storm adds about one retry a second.
pub(crate) const DEFAULT_FLOOR: u32 = 10;
/// The default window over which requests and retries are counted: 10 s, as in Finagle's and tower's
/// budgets.
pub(crate) const DEFAULT_WINDOW: Duration = Duration::from_secs(10);

/// Steps of the sliding window.
const SLOTS: u64 = 10;
/// Deposits accumulated before one of them reads the clock and credits them to the window.
const BATCH: u64 = 16;
/// Fixed-point scale: a cost of 1 retry is 1000 units, so ratios and costs keep three decimals.
const UNIT: u64 = 1000;
/// Ratios and costs above this are taken as this, so no product can overflow.
const MAX_SCALED: f64 = 1_000_000.0;

/// A retry budget, shared by every clone of this handle.
///
/// A [`RetryPolicy`](crate::RetryPolicy) carries one (the default policy a budget with the default
/// settings); every layer and service made from that policy, or from its clones, draws on it. Give
/// two policies the same handle to share one budget between layers. See the [module](self) for how
/// it counts.
///
/// ```
/// use tower_http_retry::budget::RetryBudget;
/// use tower_http_retry::classify::RetryClass;
///
/// // No floor: retries come only from deposits, one per 10 requests.
/// let budget = RetryBudget::builder().ratio(0.1).floor(0).build();
/// for _ in 0..10 {
///     budget.deposit();
/// }
/// assert!(budget.try_withdraw(RetryClass::Transient));
/// assert!(!budget.try_withdraw(RetryClass::Transient));
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    shared: Arc<Shared>,
}

/// Settings of a [`RetryBudget`]; made by [`RetryBudget::builder`].
///
/// The settings are plain values: every [`build`](Self::build) makes a new, separate budget.
/// Share one by cloning the [`RetryBudget`] handle, not the builder.
///
/// ```
/// use tower_http_retry::budget::RetryBudget;
/// use tower_http_retry::classify::RetryClass;
///
/// let settings = RetryBudget::builder().floor(1).ratio(0.0);
/// let (a, b) = (settings.clone().build(), settings.build());
/// assert!(a.try_withdraw(RetryClass::Transient));
/// assert!(!a.try_withdraw(RetryClass::Transient));
/// // `b` has a floor of its own.
/// assert!(b.try_withdraw(RetryClass::Transient));
/// ```
#[derive(Clone, Debug)]
pub struct RetryBudgetBuilder {
    ratio: f64,
    floor: u32,
    window: Duration,
    throttling_cost: f64,
    transient_cost: f64,
    store: Option<(Store, String)>,
}

struct Shared {
    /// The instant of step `SLOTS`; steps before it are the empty past.
    start: Instant,
    step_nanos: u64,
    floor_units: u64,
    deposit_units: u64,
    throttling_cost: u64,
    transient_cost: u64,
    slots: [Slot; SLOTS as usize],
    /// Units withdrawn by the retries still in the window: the one counter every withdrawal swaps.
    withdrawn: AtomicU64,
    /// Deposits not yet credited to a step.
    pending: AtomicU64,
    /// The fleet's budget, when shared through a store; this one decides while the store is down.
    account: Option<Arc<Account>>,
}

/// One step of the window. `epoch` is the step it counts for; a slot is reused every `SLOTS` steps.
struct Slot {
    epoch: AtomicU64,
    deposits: AtomicU64,
    withdrawn: AtomicU64,
}

impl Default for RetryBudget {
    /// A budget with the default settings: 10% of requests, a floor of 10 retries, a 10 s window.
    fn default() -> Self {
        Self::builder().build()
    }
}

impl RetryBudget {
    /// A budget with the default settings: 10% of requests, a floor of 10 retries, a 10 s window.
    ///
    /// ```
    /// use tower_http_retry::budget::RetryBudget;
    ///
    /// let floor = 10.0;
    /// let budget = RetryBudget::new();
    /// assert_eq!(budget.available(), floor);
    /// for _ in 0..10 {
    ///     budget.deposit();
    /// }
    /// assert_eq!(budget.available(), floor + 10.0 * 0.1);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Settings for a budget, starting from the defaults.
    ///
    /// ```
    /// use tower_http_retry::budget::RetryBudget;
    ///
    /// // Only the floor changes; the ratio stays at 10%.
    /// let budget = RetryBudget::builder().floor(0).build();
    /// assert_eq!(budget.available(), 0.0);
    /// for _ in 0..20 {
    ///     budget.deposit();
    /// }
    /// assert_eq!(budget.available(), 2.0);
    /// ```
    pub fn builder() -> RetryBudgetBuilder {
        RetryBudgetBuilder {
            ratio: DEFAULT_RATIO,
            floor: DEFAULT_FLOOR,
            window: DEFAULT_WINDOW,
            throttling_cost: 1.0,
            transient_cost: 1.0,
            store: None,
        }
    }

    /// Counts one request. The layer deposits once per call, when it starts.
    ///
    /// Deposits are credited to the window in batches of 16, or when a retry is next asked for: most
    /// deposits are a single atomic addition.
    ///
    /// ```
    /// use tower_http_retry::budget::RetryBudget;
    /// use tower_http_retry::classify::RetryClass;
    ///
    /// let budget = RetryBudget::builder().floor(0).ratio(0.5).build();
    /// assert!(!budget.try_withdraw(RetryClass::Transient));
    /// budget.deposit();
    /// budget.deposit();
    /// // Two requests fund one retry.
    /// assert!(budget.try_withdraw(RetryClass::Transient));
    /// ```
    #[inline]
    pub fn deposit(&self) {
        self.shared.deposit();
    }

    /// Takes the cost of one retry of `class` if the budget allows it; `false` leaves it untouched.
    ///
    /// ```
    /// use tower_http_retry::budget::RetryBudget;
    /// use tower_http_retry::classify::RetryClass;
    ///
    /// let budget = RetryBudget::builder()
    ///     .floor(1)
    ///     .ratio(0.0)
    ///     .cost(RetryClass::Throttling, 2.0)
    ///     .build();
    /// // A throttling retry costs 2; only 1 is available, and a refusal takes nothing.
    /// assert!(!budget.try_withdraw(RetryClass::Throttling));
    /// assert_eq!(budget.available(), 1.0);
    /// assert!(budget.try_withdraw(RetryClass::Transient));
    /// assert_eq!(budget.available(), 0.0);
    /// ```
    pub fn try_withdraw(&self, class: RetryClass) -> bool {
        // Spent at once: no guard to give it back, so no handle on the budget to clone.
        self.take(self.shared.cost(class)).is_some()
    }

    /// Withdraws a retry of `class` that is given back if it is never sent: the returned guard gives
    /// the cost back when dropped, unless [`Withdrawal::spend`] was called.
    pub(crate) fn withdraw(&self, class: RetryClass) -> Option<Withdrawal> {
        let cost = self.shared.cost(class);
        let epoch = self.take(cost)?;
        Some(Withdrawal {
            budget: self.clone(),
            epoch,
            cost,
        })
    }

    /// Takes `cost` from the fleet's lease while its store answers, else from this process's
    /// window: `Some` with the step it was recorded in (`None` for the lease), or `None` when the
    /// budget does not allow it.
    fn take(&self, cost: u64) -> Option<Option<u64>> {
        match self.fleet() {
            Some(account) => account.take(cost).then_some(None),
            None => self.shared.try_withdraw(Instant::now(), cost).map(Some),
        }
    }

    /// The fleet's account, while its store answers.
    fn fleet(&self) -> Option<&Account> {
        self.shared
            .account
            .as_deref()
            .filter(|account| account.is_online())
    }

    /// How many retries of cost 1 the budget would grant now (fractions included).
    ///
    /// ```
    /// use tower_http_retry::budget::RetryBudget;
    ///
    /// let budget = RetryBudget::builder().ratio(0.5).floor(2).build();
    /// budget.deposit();
    /// assert_eq!(budget.available(), 2.5);
    /// ```
    pub fn available(&self) -> f64 {
        let shared = &*self.shared;
        let now = shared.epoch_at(Instant::now());
        shared.credit(now);
        shared.expire(now);
        let allowed = shared.allowed(now);
        let withdrawn = shared.withdrawn.load(Ordering::Acquire);
        allowed.saturating_sub(withdrawn) as f64 / UNIT as f64
    }

    /// Whether two handles share one budget.
    #[cfg(test)]
    pub(crate) fn same_as(&self, other: &RetryBudget) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl RetryBudgetBuilder {
    /// Allows retries up to `ratio` times the requests in the window (0.1 is 10%). Kept to three
    /// decimals; negative or NaN is 0.
    ///
    /// ```
    /// use tower_http_retry::budget::RetryBudget;
    ///
    /// let budget = RetryBudget::builder().floor(0).ratio(0.25).build();
    /// for _ in 0..8 {
    ///     budget.deposit();
    /// }
    /// assert_eq!(budget.available(), 2.0);
    /// ```
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }

    /// Allows `retries` retries in any window, whatever the traffic, so that a lone failing request
    /// still gets its retries.
    ///
    /// ```
    /// use tower_http_retry::budget::RetryBudget;
    /// use tower_http_retry::classify::RetryClass;
    ///
    /// // No request counted yet: the floor alone grants three retries.
    /// let budget = RetryBudget::builder().floor(3).build();
    /// let granted = (0..10)
    ///     .filter(|_| budget.try_withdraw(RetryClass::Transient))
    ///     .count();
    /// assert_eq!(granted, 3);
    /// ```
    pub fn floor(mut self, retries: u32) -> Self {
        self.floor = retries;
        self
    }

    /// Counts requests and retries over the last `window` (at least 10 ms; 10 s by default). It slides
    /// in ten steps.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::budget::RetryBudget;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let budget = RetryBudget::builder()
    ///     .floor(0)
    ///     .ratio(1.0)
    ///     .window(Duration::from_secs(1))
    ///     .build();
    /// budget.deposit();
    /// assert_eq!(budget.available(), 1.0);
    /// tokio::time::advance(Duration::from_secs(1)).await;
    /// assert_eq!(budget.available(), 0.0, "the request has left the window");
    /// # }
    /// ```
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Makes a retry of `class` cost `cost` (1 by default for both classes). A cost of 0 lets that
    /// class retry without limit; 2 makes each of its retries count twice. Kept to three decimals.
    ///
    /// ```
    /// use tower_http_retry::budget::RetryBudget;
    /// use tower_http_retry::classify::RetryClass;
    ///
    /// // Retries of throttled requests count double: the server has already said it is busy.
    /// let budget = RetryBudget::builder().floor(4).cost(RetryClass::Throttling, 2.0).build();
    /// assert!(budget.try_withdraw(RetryClass::Throttling));
    /// assert!(budget.try_withdraw(RetryClass::Throttling));
    /// assert!(!budget.try_withdraw(RetryClass::Throttling));
    /// ```
    pub fn cost(mut self, class: RetryClass, cost: f64) -> Self {
        match class {
            RetryClass::Throttling => self.throttling_cost = cost,
            RetryClass::Transient => self.transient_cost = cost,
        }
        self
    }

    /// Shares the budget with every process that names the same budget on the same store: the
    /// fleet's requests fund the fleet's retries. See the [store](crate::store) module.
    ///
    /// ```
    /// use tower_http_retry::budget::RetryBudget;
    /// use tower_http_retry::store::Store;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = Store::local();
    /// let budget = RetryBudget::builder().ratio(0.1).store(&store, "orders-api").build();
    /// # let _ = budget;
    /// # }
    /// ```
    pub fn store(mut self, store: &Store, name: &str) -> Self {
        self.store = Some((store.clone(), name.to_owned()));
        self
    }

    /// The budget, starting empty (only the floor is available) at the current instant.
    ///
    /// ```
    /// use tower_http_retry::budget::RetryBudget;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let budget = RetryBudget::builder().floor(5).build();
    /// assert_eq!(budget.available(), 5.0);
    /// let policy = RetryPolicy::default().retry_budget(budget);
    /// # let _ = policy;
    /// ```
    pub fn build(self) -> RetryBudget {
        let window = self.window.max(Duration::from_millis(10));
        let step_nanos = u64::try_from(window.as_nanos() / u128::from(SLOTS)).unwrap_or(u64::MAX);
        let (throttling_cost, transient_cost) =
            (scaled(self.throttling_cost), scaled(self.transient_cost));
        let account = self.store.map(|(store, name)| {
            let settings = store::AccountSettings {
                floor: u64::from(self.floor) * UNIT,
                per_deposit: scaled(self.ratio),
                window,
                // Two retries of the dearer class: enough for a lone failing call, little to strand.
                lease: 2 * throttling_cost.max(transient_cost).max(UNIT),
            };
            store.account(&name, settings)
        });
        RetryBudget {
            shared: Arc::new(Shared {
                start: Instant::now(),
                step_nanos,
                floor_units: u64::from(self.floor) * UNIT,
                deposit_units: scaled(self.ratio),
                throttling_cost,
                transient_cost,
                // Slot i starts at step i, before the start: empty, and expired on first use.
                slots: std::array::from_fn(|i| Slot {
                    epoch: AtomicU64::new(i as u64),
                    deposits: AtomicU64::new(0),
                    withdrawn: AtomicU64::new(0),
                }),
                withdrawn: AtomicU64::new(0),
                pending: AtomicU64::new(0),
                account,
            }),
        }
    }
}

/// `value` in units, clamped to `0..=MAX_SCALED` (NaN is 0).
fn scaled(value: f64) -> u64 {
    let clamped = if value > 0.0 {
        value.min(MAX_SCALED)
    } else {
        0.0
    };
    (clamped * UNIT as f64).round() as u64
}

impl Shared {
    fn cost(&self, class: RetryClass) -> u64 {
        match class {
            RetryClass::Throttling => self.throttling_cost,
            RetryClass::Transient => self.transient_cost,
        }
    }

    /// The step `now` falls in; the first step is `SLOTS`, so `epoch - SLOTS` never underflows.
    fn epoch_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start);
        let nanos = elapsed
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(elapsed.subsec_nanos()));
        SLOTS.saturating_add(nanos / self.step_nanos.max(1))
    }

    fn slot(&self, epoch: u64) -> &Slot {
        &self.slots[(epoch % SLOTS) as usize]
    }

    #[inline]
    fn deposit(&self) {
        if let Some(account) = &self.account {
            account.deposit();
        }
        if self.pending.fetch_add(1, Ordering::AcqRel) + 1 >= BATCH {
            self.credit(self.epoch_at(Instant::now()));
        }
    }

    /// Credits the pending deposits to step `epoch`.
    fn credit(&self, epoch: u64) {
        let deposits = self.pending.swap(0, Ordering::AcqRel);
        if deposits > 0 {
            let slot = self.slot(epoch);
            self.renew(slot, epoch);
            slot.deposits.fetch_add(deposits, Ordering::AcqRel);
        }
    }

    /// The step the withdrawal was recorded in, if it was granted.
    fn try_withdraw(&self, now: Instant, cost: u64) -> Option<u64> {
        let epoch = self.epoch_at(now);
        self.credit(epoch);
        self.expire(epoch);
        let allowed = self.allowed(epoch);
        // The single point of decision: a withdrawal that would exceed what is allowed is refused, and
        // two withdrawals racing for the last retry cannot both succeed because only one swap wins.
        let granted = self
            .withdrawn
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |withdrawn| {
                withdrawn
                    .checked_add(cost)
                    .filter(|&total| total <= allowed)
            })
            .is_ok();
        if granted {
            // Recorded in its step, so the cost is given back when that step leaves the window.
            self.slot(epoch).withdrawn.fetch_add(cost, Ordering::AcqRel);
        }
        granted.then_some(epoch)
    }

    /// Gives back `cost` withdrawn in step `epoch`, unless that step has already left the window (its
    /// withdrawals were given back then).
    fn refund(&self, epoch: u64, cost: u64) {
        let slot = self.slot(epoch);
        if slot.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        let mut taken = 0;
        let _ = slot
            .withdrawn
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |withdrawn| {
                taken = withdrawn.min(cost);
                Some(withdrawn - taken)
            });
        saturating_sub(&self.withdrawn, taken);
    }

    /// What the window allows in all: the floor plus the ratio of the deposits it holds. Deposits only
    /// grow between expiries, so a value read a moment ago never allows more than is allowed now.
    fn allowed(&self, epoch: u64) -> u64 {
        let deposits = self
            .slots
            .iter()
            .filter(|slot| slot.epoch.load(Ordering::Acquire).saturating_add(SLOTS) > epoch)
            .fold(0u64, |sum, slot| {
                sum.saturating_add(slot.deposits.load(Ordering::Acquire))
            });
        self.floor_units
            .saturating_add(deposits.saturating_mul(self.deposit_units))
    }

    /// Forgets every step that has left the window at `epoch`.
    fn expire(&self, epoch: u64) {
        for (i, slot) in self.slots.iter().enumerate() {
            // The newest step this slot can hold at `epoch`.
            let newest = epoch - (epoch - i as u64) % SLOTS;
            self.renew(slot, newest);
        }
    }

    /// Moves `slot` to step `epoch` if it holds an older one, giving back what that step withdrew.
    fn renew(&self, slot: &Slot, epoch: u64) {
        let held = slot.epoch.load(Ordering::Acquire);
        if held >= epoch {
            return; // current, or already moved on by a thread whose clock reads later
        }
        // Read what the old step holds before claiming the slot: whatever is recorded after the claim
        // belongs to the new step and must not be erased.
        let deposits = slot.deposits.load(Ordering::Acquire);
        let withdrawn = slot.withdrawn.load(Ordering::Acquire);
        if slot
            .epoch
            .compare_exchange(held, epoch, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return; // another thread renewed it
        }
        saturating_sub(&slot.deposits, deposits);
        saturating_sub(&slot.withdrawn, withdrawn);
        saturating_sub(&self.withdrawn, withdrawn);
    }
}

/// A granted withdrawal for a retry not sent yet: dropped unspent (the call was canceled or ended
/// during its wait), it gives its cost back.
pub(crate) struct Withdrawal {
    budget: RetryBudget,
    /// The step it was recorded in; `None` when drawn from the fleet's lease.
    epoch: Option<u64>,
    cost: u64,
}

impl Withdrawal {
    /// The retry was sent: the cost stays withdrawn.
    pub(crate) fn spend(mut self) {
        self.cost = 0;
    }
}

impl Drop for Withdrawal {
    fn drop(&mut self) {
        if self.cost == 0 {
            return;
        }
        match (self.epoch, &self.budget.shared.account) {
            (Some(epoch), _) => self.budget.shared.refund(epoch, self.cost),
            (None, Some(account)) => account.give_back(self.cost),
            (None, None) => {}
        }
    }
}

fn saturating_sub(counter: &AtomicU64, amount: u64) {
    if amount > 0 {
        let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |value| {
            Some(value.saturating_sub(amount))
        });
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &*self.shared;
        f.debug_struct("RetryBudget")
            .field("ratio", &(shared.deposit_units as f64 / UNIT as f64))
            .field("floor", &(shared.floor_units / UNIT))
            .field(
                "window",
                &Duration::from_nanos(shared.step_nanos.saturating_mul(SLOTS)),
            )
            .field("available", &self.available())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    const T: RetryClass = RetryClass::Transient;

    fn drain(budget: &RetryBudget) -> u32 {
        let mut n = 0;
        while budget.try_withdraw(T) {
            n += 1;
        }
        n
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_alone_allows_its_retries_then_renews_with_the_window() {
        let budget = RetryBudget::builder().floor(3).ratio(0.0).build();
        assert_eq!(drain(&budget), 3);
        advance(Duration::from_secs(5)).await;
        assert_eq!(drain(&budget), 0, "still inside the window");
        advance(Duration::from_secs(5)).await;
        assert_eq!(drain(&budget), 3, "the withdrawals have left the window");
    }

    #[tokio::test(start_paused = true)]
    async fn deposits_fund_retries_only_while_in_the_window() {
        let budget = RetryBudget::builder().floor(0).ratio(0.5).build();
        for _ in 0..4 {
            budget.deposit();
        }
        assert_eq!(budget.available(), 2.0);
        advance(Duration::from_secs(9)).await;
        assert_eq!(budget.available(), 2.0);
        advance(Duration::from_secs(1)).await;
        assert_eq!(budget.available(), 0.0, "deposits older than the window");
        assert_eq!(drain(&budget), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_slides_in_steps() {
        let budget = RetryBudget::builder()
            .floor(0)
            .ratio(1.0)
            .window(Duration::from_secs(10))
            .build();
        budget.deposit();
        assert_eq!(budget.available(), 1.0); // credits the deposit to step 0
        advance(Duration::from_secs(3)).await;
        budget.deposit();
        assert_eq!(budget.available(), 2.0); // step 3
        advance(Duration::from_secs(7)).await; // step 10: step 0 leaves
        assert_eq!(budget.available(), 1.0);
        advance(Duration::from_secs(3)).await; // step 13: step 3 leaves
        assert_eq!(budget.available(), 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_withdrawal_is_given_back_when_its_step_leaves() {
        let budget = RetryBudget::builder().floor(1).ratio(0.0).build();
        assert!(budget.try_withdraw(T));
        advance(Duration::from_secs(4)).await;
        assert!(!budget.try_withdraw(T));
        advance(Duration::from_secs(6)).await;
        assert!(budget.try_withdraw(T));
        // A long silence expires everything at once.
        advance(Duration::from_secs(3600)).await;
        assert_eq!(budget.available(), 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn deposits_are_credited_by_the_batch_or_when_a_retry_is_asked_for() {
        let budget = RetryBudget::builder().floor(0).ratio(1.0).build();
        for _ in 0..BATCH - 1 {
            budget.deposit();
        }
        assert_eq!(budget.shared.pending.load(Ordering::Acquire), BATCH - 1);
        budget.deposit();
        assert_eq!(
            budget.shared.pending.load(Ordering::Acquire),
            0,
            "the 16th credits the batch"
        );
        budget.deposit();
        assert!(
            budget.try_withdraw(T),
            "a withdrawal credits what is pending first"
        );
        assert_eq!(budget.available(), BATCH as f64);
    }

    #[test]
    fn classes_cost_what_they_are_given() {
        let budget = RetryBudget::builder()
            .floor(3)
            .ratio(0.0)
            .cost(RetryClass::Throttling, 1.5)
            .cost(RetryClass::Transient, 0.0)
            .build();
        assert!(budget.try_withdraw(RetryClass::Throttling));
        assert!(budget.try_withdraw(RetryClass::Throttling));
        assert!(!budget.try_withdraw(RetryClass::Throttling));
        for _ in 0..100 {
            assert!(budget.try_withdraw(RetryClass::Transient), "free");
        }
    }

    #[test]
    fn hostile_settings_are_clamped() {
        for ratio in [f64::NAN, -1.0, f64::INFINITY, 1e300] {
            let budget = RetryBudget::builder()
                .ratio(ratio)
                .window(Duration::ZERO)
                .build();
            budget.deposit();
            let _ = budget.try_withdraw(T);
            assert!(budget.available().is_finite());
        }
        let huge = RetryBudget::builder()
            .window(Duration::MAX)
            .floor(u32::MAX)
            .build();
        assert!(huge.try_withdraw(T));
    }

    #[test]
    fn clones_share_and_new_budgets_do_not() {
        let a = RetryBudget::builder().floor(1).ratio(0.0).build();
        let b = a.clone();
        assert!(a.same_as(&b));
        assert!(a.try_withdraw(T));
        assert!(!b.try_withdraw(T));
        assert!(!a.same_as(&RetryBudget::new()));
    }
}
