//! How long to wait between attempts: a [`Backoff`] shape, capped per delay, spread by a [`Jitter`].
//!
//! ```
//! use std::time::Duration;
//! use tower_http_retry::backoff::{Backoff, Jitter};
//!
//! // 500 ms, 750 ms, 1.125 s, ... never more than 60 s between tries, each spread by full jitter.
//! let backoff = Backoff::exponential(Duration::from_millis(500))
//!     .multiplier(1.5)
//!     .max_delay(Duration::from_secs(60))
//!     .jitter(Jitter::Full);
//! assert_eq!(backoff.base_delay(1), Duration::from_millis(750));
//! ```
//!
//! Every computation saturates: any retry number up to `u32::MAX` gives a delay no longer than the cap.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::RngExt;

/// A delay schedule: a shape, a cap on each delay and a jitter.
///
/// Retry numbers count from 0: `base_delay(0)` is the wait before the first retry.
///
/// ```
/// use std::time::Duration;
/// use tower_http_retry::backoff::Backoff;
///
/// let ms = Duration::from_millis;
/// let backoff = Backoff::exponential(ms(100)).max_delay(ms(1000));
/// assert_eq!(backoff.base_delay(0), ms(100)); // before the first retry
/// assert_eq!(backoff.base_delay(3), ms(800));
/// assert_eq!(backoff.base_delay(4), ms(1000)); // 1.6 s, capped
/// assert_eq!(Backoff::default(), Backoff::exponential(ms(300)));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    shape: Shape,
    max_delay: Duration,
    jitter: Jitter,
}

#[derive(Clone, Debug, PartialEq)]
enum Shape {
    Exponential { base: Duration, multiplier: f64 },
    Constant(Duration),
    Linear { base: Duration, step: Duration },
    Schedule(Arc<[Duration]>),
}

/// How a computed delay is spread so that clients failing together do not retry together.
///
/// Jitter spreads the wait the layer makes, not [`Backoff::base_delay`]:
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceExt};
/// use tower_http_retry::backoff::{Backoff, Jitter};
/// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let unavailable = service_fn(|_: Request<String>| async {
///     Ok::<_, Infallible>(Response::builder().status(503).body(String::new()).unwrap())
/// });
/// // Equal jitter: a delay of 1 s becomes a wait between 0.5 s and 1 s.
/// let policy = RetryPolicy::default()
///     .max_attempts(2)
///     .backoff(Backoff::constant(Duration::from_secs(1)).jitter(Jitter::Equal));
///
/// let client = Retry::new(unavailable, policy);
/// let response = client.oneshot(Request::new(String::new())).await.unwrap();
/// let history = response.extensions().get::<RetryHistory>().unwrap();
/// let waited = history.total_wait();
/// assert!(waited >= Duration::from_millis(500) && waited <= Duration::from_secs(1));
/// assert_eq!(Jitter::default(), Jitter::Full);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// `random(0, d)`: the least total work in AWS's "Exponential Backoff And Jitter" simulation.
    #[default]
    Full,
    /// `d/2 + random(0, d/2)`: never shorter than half the delay.
    Equal,
    /// `min(cap, random(base, previous * 3))`: each delay grows from the one before.
    Decorrelated,
    /// The delay exactly: every client waits the same time.
    None,
}

/// The default cap on a single delay: 30 s, the cap in the QuillAI retry guidance.
pub(crate) const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(30);

impl Backoff {
    /// `base * 2^n`, capped at 30 s, with full jitter. Change the factor with [`multiplier`](Self::multiplier).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::backoff::Backoff;
    ///
    /// let backoff = Backoff::exponential(Duration::from_secs(1));
    /// assert_eq!(backoff.base_delay(0), Duration::from_secs(1));
    /// assert_eq!(backoff.base_delay(4), Duration::from_secs(16));
    /// assert_eq!(backoff.base_delay(5), Duration::from_secs(30)); // 32 s, capped at 30 s
    /// ```
    pub fn exponential(base: Duration) -> Self {
        Self::with_shape(Shape::Exponential {
            base,
            multiplier: 2.0,
        })
    }

    /// The same delay before every retry, capped at 30 s, with full jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::backoff::Backoff;
    ///
    /// let backoff = Backoff::constant(Duration::from_secs(2));
    /// assert_eq!(backoff.base_delay(0), Duration::from_secs(2));
    /// assert_eq!(backoff.base_delay(1_000), Duration::from_secs(2));
    ///
    /// // A longer delay needs a higher cap.
    /// let minute = Duration::from_secs(60);
    /// assert_eq!(Backoff::constant(minute).base_delay(0), Duration::from_secs(30));
    /// let raised = Backoff::constant(minute).max_delay(minute);
    /// assert_eq!(raised.base_delay(0), minute);
    /// ```
    pub fn constant(delay: Duration) -> Self {
        Self::with_shape(Shape::Constant(delay))
    }

    /// `base + step * n`, capped at 30 s, with full jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::backoff::Backoff;
    ///
    /// let backoff = Backoff::linear(Duration::from_secs(1), Duration::from_millis(500));
    /// assert_eq!(backoff.base_delay(0), Duration::from_secs(1));
    /// assert_eq!(backoff.base_delay(3), Duration::from_millis(2500));
    /// ```
    pub fn linear(base: Duration, step: Duration) -> Self {
        Self::with_shape(Shape::Linear { base, step })
    }

    /// An explicit list of delays, one per retry; retries past its end reuse its last delay.
    ///
    /// The cap is lifted to the longest entry and jitter is off, so the schedule is kept as written;
    /// call [`max_delay`](Self::max_delay) or [`jitter`](Self::jitter) after this to change that.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::backoff::Backoff;
    ///
    /// let min = |m: u64| Duration::from_secs(60 * m);
    /// let webhooks = Backoff::schedule([min(1), min(5), min(30), min(120), min(720)]);
    /// assert_eq!(webhooks.base_delay(2), min(30));
    /// assert_eq!(webhooks.base_delay(9), min(720));
    /// ```
    pub fn schedule(delays: impl IntoIterator<Item = Duration>) -> Self {
        let delays: Arc<[Duration]> = delays.into_iter().collect();
        let longest = delays.iter().copied().max().unwrap_or(Duration::ZERO);
        Self {
            shape: Shape::Schedule(delays),
            max_delay: longest,
            jitter: Jitter::None,
        }
    }

    /// No wait at all between attempts.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::backoff::Backoff;
    ///
    /// let backoff = Backoff::none();
    /// assert_eq!(backoff.base_delay(0), Duration::ZERO);
    /// assert_eq!(backoff.base_delay(9), Duration::ZERO);
    /// ```
    pub fn none() -> Self {
        Self::constant(Duration::ZERO).jitter(Jitter::None)
    }

    fn with_shape(shape: Shape) -> Self {
        Self {
            shape,
            max_delay: DEFAULT_MAX_DELAY,
            jitter: Jitter::Full,
        }
    }

    /// Sets the growth factor of an exponential backoff (1.5 and 2 are common).
    ///
    /// A factor below 1 or NaN is taken as 1, so delays never shrink. Other shapes ignore it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::backoff::Backoff;
    ///
    /// let backoff = Backoff::exponential(Duration::from_secs(1)).multiplier(1.5);
    /// assert_eq!(backoff.base_delay(2), Duration::from_millis(2250));
    ///
    /// let never_shrinks = Backoff::exponential(Duration::from_secs(1)).multiplier(0.5);
    /// assert_eq!(never_shrinks.base_delay(5), Duration::from_secs(1));
    /// ```
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        if let Shape::Exponential { multiplier: m, .. } = &mut self.shape {
            *m = if multiplier >= 1.0 { multiplier } else { 1.0 };
        }
        self
    }

    /// Caps every single delay, before jitter. 30 s by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::backoff::Backoff;
    ///
    /// let backoff = Backoff::exponential(Duration::from_secs(1));
    /// assert_eq!(backoff.base_delay(5), Duration::from_secs(30)); // 32 s, capped
    ///
    /// let backoff = backoff.max_delay(Duration::from_secs(5));
    /// assert_eq!(backoff.base_delay(2), Duration::from_secs(4));
    /// assert_eq!(backoff.base_delay(3), Duration::from_secs(5)); // 8 s, capped
    /// ```
    pub fn max_delay(mut self, max: Duration) -> Self {
        self.max_delay = max;
        self
    }

    /// Sets how delays are spread. [`Jitter::Full`] by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::backoff::{Backoff, Jitter};
    ///
    /// let spread = Backoff::exponential(Duration::from_secs(1));
    /// let exact = spread.clone().jitter(Jitter::None);
    /// // Jitter spreads the wait, not the delay it starts from.
    /// assert_eq!(exact.base_delay(3), spread.base_delay(3));
    /// ```
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The cap on a single delay.
    #[cfg(test)]
    pub(crate) fn max_delay_value(&self) -> Duration {
        self.max_delay
    }

    /// The jitter in use.
    #[cfg(test)]
    pub(crate) fn jitter_value(&self) -> Jitter {
        self.jitter
    }

    /// The delay before retry `n` (counting from 0), capped, before jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::backoff::Backoff;
    ///
    /// let backoff = Backoff::exponential(Duration::from_millis(100));
    /// assert_eq!(backoff.base_delay(2), Duration::from_millis(400));
    /// // Saturates: no retry number overflows the cap.
    /// assert_eq!(backoff.base_delay(u32::MAX), Duration::from_secs(30));
    /// ```
    pub fn base_delay(&self, n: u32) -> Duration {
        let raw = match &self.shape {
            Shape::Exponential { base, multiplier } => exponential(*base, *multiplier, n),
            Shape::Constant(d) => *d,
            Shape::Linear { base, step } => base.saturating_add(step.saturating_mul(n)),
            Shape::Schedule(delays) => {
                let last = delays.len().checked_sub(1);
                last.map_or(Duration::ZERO, |last| delays[(n as usize).min(last)])
            }
        };
        raw.min(self.max_delay)
    }

    /// The smallest delay of this backoff: the floor of decorrelated jitter.
    fn first_delay(&self) -> Duration {
        self.base_delay(0)
    }

    /// The jittered delay before retry `n`, given the previous jittered delay (for decorrelated jitter).
    /// `rng` gives the random source: it is asked for only when there is something to draw (never
    /// without jitter, nor for a zero delay), so a call that draws nothing makes none.
    #[inline]
    pub(crate) fn delay<'r>(
        &self,
        n: u32,
        previous: Option<Duration>,
        rng: impl FnOnce() -> &'r mut SmallRng,
    ) -> Duration {
        let d = self.base_delay(n);
        match self.jitter {
            Jitter::None => d,
            Jitter::Full => random_between(rng, Duration::ZERO, d),
            Jitter::Equal => {
                let half = d / 2;
                half + random_between(rng, Duration::ZERO, d - half)
            }
            Jitter::Decorrelated => {
                let floor = self.first_delay();
                let previous = previous.unwrap_or(floor);
                let high = previous.saturating_mul(3).min(self.max_delay).max(floor);
                random_between(rng, floor, high)
            }
        }
    }
}

impl Default for Backoff {
    /// Exponential from 300 ms, doubling, capped at 30 s, full jitter.
    fn default() -> Self {
        Self::exponential(Duration::from_millis(300))
    }
}

/// `base * multiplier^n` in floating point, so overflow becomes infinity and then the cap.
fn exponential(base: Duration, multiplier: f64, n: u32) -> Duration {
    let exponent = i32::try_from(n).unwrap_or(i32::MAX);
    let secs = base.as_secs_f64() * multiplier.powi(exponent);
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// A uniformly random duration in `[low, high]` (nanosecond resolution; `high` below `low` gives `low`).
fn random_between<'r>(
    rng: impl FnOnce() -> &'r mut SmallRng,
    low: Duration,
    high: Duration,
) -> Duration {
    if high <= low {
        return low;
    }
    let span = (high - low).as_nanos().min(u64::MAX as u128) as u64;
    low + Duration::from_nanos(rng().random_range(0..=span))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn exponential_grows_by_the_multiplier_until_the_cap() {
        let b = Backoff::exponential(ms(500))
            .multiplier(1.5)
            .max_delay(ms(2000));
        let delays: Vec<_> = (0..6).map(|n| b.base_delay(n)).collect();
        assert_eq!(
            delays,
            [
                ms(500),
                ms(750),
                ms(1125),
                ms(1687) + Duration::from_micros(500),
                ms(2000),
                ms(2000)
            ]
        );
    }

    #[test]
    fn multiplier_below_one_or_nan_is_taken_as_one() {
        for m in [0.5, -3.0, f64::NAN] {
            let b = Backoff::exponential(ms(100)).multiplier(m);
            assert_eq!(b.base_delay(7), ms(100), "multiplier {m}");
        }
    }

    #[test]
    fn linear_and_constant_shapes() {
        let l = Backoff::linear(ms(100), ms(50));
        assert_eq!(l.base_delay(0), ms(100));
        assert_eq!(l.base_delay(3), ms(250));
        assert_eq!(Backoff::constant(ms(70)).base_delay(1_000_000), ms(70));
    }

    #[test]
    fn schedule_keeps_its_last_delay_and_an_empty_one_waits_nothing() {
        let s = Backoff::schedule([ms(1), ms(5)]);
        assert_eq!(s.base_delay(0), ms(1));
        assert_eq!(s.base_delay(1), ms(5));
        assert_eq!(s.base_delay(u32::MAX), ms(5));
        assert_eq!(Backoff::schedule([]).base_delay(3), Duration::ZERO);
    }

    #[test]
    fn no_jitter_is_exact_and_equal_jitter_keeps_half() {
        let mut rng = SmallRng::seed_from_u64(7);
        let exact = Backoff::constant(ms(800)).jitter(Jitter::None);
        assert_eq!(exact.delay(0, None, || &mut rng), ms(800));
        let equal = Backoff::constant(ms(800)).jitter(Jitter::Equal);
        for _ in 0..1000 {
            let d = equal.delay(0, None, || &mut rng);
            assert!(d >= ms(400) && d <= ms(800), "{d:?}");
        }
    }

    #[test]
    fn full_jitter_spreads_over_the_whole_range() {
        let mut rng = SmallRng::seed_from_u64(1);
        let b = Backoff::constant(ms(1000));
        let delays: Vec<_> = (0..2000).map(|_| b.delay(0, None, || &mut rng)).collect();
        assert!(delays.iter().any(|d| *d < ms(100)));
        assert!(delays.iter().any(|d| *d > ms(900)));
    }

    fn any_backoff() -> impl Strategy<Value = Backoff> {
        let d = (0u64..=10_000_000_000u64).prop_map(Duration::from_nanos);
        let shape = prop_oneof![
            (d.clone(), 1.0f64..10.0).prop_map(|(b, m)| Backoff::exponential(b).multiplier(m)),
            (d.clone(), prop::num::f64::ANY)
                .prop_map(|(b, m)| Backoff::exponential(b).multiplier(m)),
            d.clone().prop_map(Backoff::constant),
            (d.clone(), d.clone()).prop_map(|(b, s)| Backoff::linear(b, s)),
            prop::collection::vec(d.clone(), 0..6).prop_map(Backoff::schedule),
        ];
        let jitter = prop_oneof![
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated),
            Just(Jitter::None)
        ];
        (shape, d, jitter).prop_map(|(b, cap, j)| b.max_delay(cap).jitter(j))
    }

    proptest! {
        #[test]
        fn every_delay_is_within_its_bounds_and_the_cap(
            backoff in any_backoff(),
            n in prop_oneof![0u32..64, Just(u32::MAX), Just(u32::MAX - 1), any::<u32>()],
            previous in proptest::option::of((0u64..u64::MAX).prop_map(Duration::from_nanos)),
            seed in any::<u64>(),
        ) {
            let mut rng = SmallRng::seed_from_u64(seed);
            let base = backoff.base_delay(n);
            let cap = backoff.max_delay_value();
            prop_assert!(base <= cap);
            let d = backoff.delay(n, previous, || &mut rng);
            prop_assert!(d <= cap, "{d:?} over cap {cap:?}");
            match backoff.jitter_value() {
                Jitter::None => prop_assert_eq!(d, base),
                Jitter::Full => prop_assert!(d <= base),
                Jitter::Equal => prop_assert!(d >= base / 2 && d <= base),
                Jitter::Decorrelated => prop_assert!(d >= backoff.first_delay().min(cap)),
            }
        }

        #[test]
        fn exponential_never_shrinks(base_ms in 0u64..10_000, m in 1.0f64..4.0, n in 0u32..200) {
            let b = Backoff::exponential(ms(base_ms)).multiplier(m).max_delay(Duration::MAX);
            prop_assert!(b.base_delay(n + 1) >= b.base_delay(n));
        }
    }
}
