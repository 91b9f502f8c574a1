//! [`Hedge`]: when to send a copy of an attempt still in flight, how many, and how often.

use std::fmt;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use http::Uri;

use super::budget::HedgeBudget;
use super::latencies::Latencies;
use super::line::Place;

/// The most attempts in flight at once gRPC's A6 allows.
const MAX_IN_FLIGHT: u32 = 5;

/// When a hedge leaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum HedgeDelay {
    /// This long after the attempt before it.
    After(Duration),
    /// At this quantile of the route's recent latencies.
    Percentile(f64),
}

/// A hedging policy: see the [module](crate::hedge).
///
/// ```
/// use std::time::Duration;
/// use tower_http_retry::hedge::Hedge;
///
/// // The 99th percentile of each route's latencies, up to 3 attempts at once, 2% more requests.
/// let hedge = Hedge::at_percentile(0.99).max_in_flight(3).budget(0.02);
/// # let _ = hedge;
/// ```
#[derive(Clone)]
pub struct Hedge {
    pub(crate) delay: HedgeDelay,
    pub(crate) max_in_flight: u32,
    /// Every method may be sent twice: the service's own word (gRPC's A6 `hedgingPolicy`).
    pub(crate) any_method: bool,
    fraction: f64,
    shared: Arc<Shared>,
}

/// What every clone of a hedging policy shares: its budget and what it measured.
struct Shared {
    budget: HedgeBudget,
    latencies: Latencies,
}

impl Shared {
    fn new(fraction: f64) -> Arc<Self> {
        Arc::new(Self {
            budget: HedgeBudget::new(fraction),
            latencies: Latencies::new(),
        })
    }
}

impl Default for Hedge {
    /// At the 95th percentile of the route's recent latencies, 2 attempts in flight at most, a
    /// budget of 5%.
    fn default() -> Self {
        Self::at_percentile(0.95)
    }
}

impl Hedge {
    /// Hedges `delay` after the attempt before (a fixed delay: no measuring needed).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::hedge::Hedge;
    ///
    /// let hedge = Hedge::after(Duration::from_millis(10));
    /// # let _ = hedge;
    /// ```
    pub fn after(delay: Duration) -> Self {
        Self::with(HedgeDelay::After(delay))
    }

    /// Hedges at `quantile` (0.5 to 0.999; 0.95 is the 95th percentile) of the latencies of the
    /// route's recent attempts; a route not yet measured is not hedged.
    ///
    /// ```
    /// use tower_http_retry::hedge::Hedge;
    ///
    /// let hedge = Hedge::at_percentile(0.99);
    /// # let _ = hedge;
    /// ```
    pub fn at_percentile(quantile: f64) -> Self {
        let quantile = match quantile.is_nan() {
            true => 0.95,
            false => quantile.clamp(0.5, 0.999),
        };
        Self::with(HedgeDelay::Percentile(quantile))
    }

    fn with(delay: HedgeDelay) -> Self {
        let fraction = 0.05;
        Self {
            delay,
            max_in_flight: 2,
            any_method: false,
            fraction,
            shared: Shared::new(fraction),
        }
    }

    /// At most `attempts` in flight at once, the first included (2 by default; 1 turns hedging
    /// off; at most 5).
    ///
    /// ```
    /// use tower_http_retry::hedge::Hedge;
    ///
    /// let hedge = Hedge::default().max_in_flight(3);
    /// # let _ = hedge;
    /// ```
    pub fn max_in_flight(mut self, attempts: u32) -> Self {
        self.max_in_flight = attempts.clamp(1, MAX_IN_FLIGHT);
        self
    }

    /// Hedges are at most `fraction` of calls (0.05 by default: 5% more requests; from 0 to 4, as
    /// a call sends at most 4 hedges), counted from the calls made with this policy and its
    /// clones; a quiet period saves up at most ten.
    ///
    /// ```
    /// use tower_http_retry::hedge::Hedge;
    ///
    /// let hedge = Hedge::default().budget(0.01);
    /// # let _ = hedge;
    /// ```
    pub fn budget(mut self, fraction: f64) -> Self {
        self.fraction = match fraction.is_nan() {
            true => 0.0,
            false => fraction.clamp(0.0, f64::from(MAX_IN_FLIGHT - 1)),
        };
        self.shared = Shared::new(self.fraction);
        self
    }

    /// The same policy (its budget and measures shared) with a fixed delay: a call's own.
    pub(crate) fn delayed(mut self, delay: Duration) -> Self {
        self.delay = HedgeDelay::After(delay);
        self
    }

    /// Hedges requests of any method, not only idempotent or keyed ones: for a service that says
    /// its methods are safe to send twice, as gRPC's A6 `hedgingPolicy` does per method.
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    pub(crate) fn any_method(mut self) -> Self {
        self.any_method = true;
        self
    }

    /// Whether a call may ever be hedged: a second attempt in flight allowed, and a budget that
    /// can fill (with none, a race would only wake to be refused).
    pub(crate) fn may_hedge(&self) -> bool {
        self.max_in_flight >= 2 && self.fraction > 0.0
    }

    /// A call was made: it adds its share to the budget.
    pub(crate) fn deposit(&self) {
        self.shared.budget.deposit();
    }

    /// Whether the budget allows the call at `place` (`None`: not in line) one more hedge;
    /// spends it when so. Refused, the call waits in line, woken by `waker` when it is served.
    pub(crate) fn withdraw(&self, place: &mut Option<Place>, waker: &Waker) -> bool {
        self.shared.budget.withdraw(place, waker)
    }

    /// Whether the call at `place` in the budget's line would be served now.
    pub(crate) fn serves(&self, place: &Place, waker: &Waker) -> bool {
        self.shared.budget.serves(place, waker)
    }

    /// The route of a request to `uri`, for its latencies.
    pub(crate) fn route(&self, uri: &Uri) -> u64 {
        self.shared.latencies.route(uri)
    }

    /// Whether the policy learns its delay from the latencies it records.
    pub(crate) fn measures(&self) -> bool {
        matches!(self.delay, HedgeDelay::Percentile(_))
    }

    /// An attempt of `route` answered after `latency`, or had run that long when it was dropped.
    pub(crate) fn record(&self, route: u64, latency: Duration) {
        if self.measures() {
            self.shared.latencies.record(route, latency);
        }
    }

    /// How long after an attempt of `route` the next hedge leaves; `None`: not yet known.
    pub(crate) fn delay_for(&self, route: u64) -> Option<Duration> {
        match self.delay {
            HedgeDelay::After(delay) => Some(delay),
            HedgeDelay::Percentile(q) => self.shared.latencies.percentile(route, q),
        }
    }
}

impl fmt::Debug for Hedge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hedge")
            .field("delay", &self.delay)
            .field("max_in_flight", &self.max_in_flight)
            .field("budget", &self.fraction)
            .finish()
    }
}
