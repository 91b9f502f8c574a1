//! Routes held by what several of their calls were told. A 503's `Retry-After` or a gRPC pushback
//! holds the call that got it (its own wait); when another call of the same route (scope, method
//! and path) is told to wait while the first one's time runs, the route is held: the route's calls
//! that were told nothing wait until the time the latest answer gave. One call's answer is about
//! that call (a replica that was busy, a request that was too big), two are about the route.
//!
//! Bounded: at most [`MAX_ROUTES`] routes are watched at once; past that a new route goes
//! unwatched (each of its calls still waits its own time). A route is forgotten once its time has
//! passed, at its next lookup or at a sweep, looked up or not. While no route is held, calls pay
//! one atomic load: no lock, no hash.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::lanes::KeyHasher;

/// How many locks the map is split over.
const SHARDS: usize = 16;
/// The most routes watched at once.
pub(crate) const MAX_ROUTES: usize = 4096;
/// How often the whole map is swept for routes whose time has passed, at most.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// One route a call was told to wait for.
struct Route {
    /// Until when the latest answer asked its call to wait.
    until: Instant,
    /// The call told first: an answer to another call makes the route held.
    first: u64,
    held: bool,
}

type Shard = HashMap<u64, Route, BuildHasherDefault<KeyHasher>>;

pub(crate) struct Routes {
    /// Made at the first answer that tells a call to wait: a throttle that never sees one
    /// allocates nothing for routes.
    shards: OnceLock<Box<[Mutex<Shard>]>>,
    /// Routes watched (held or not).
    watched: AtomicUsize,
    /// Routes held: 0 lets every call through on one atomic load.
    held: AtomicUsize,
    /// When the next sweep is due, in ms since `epoch`.
    next_sweep: AtomicU64,
    epoch: Instant,
}

impl Routes {
    pub(crate) fn new() -> Self {
        Self {
            shards: OnceLock::new(),
            watched: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            next_sweep: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Whether any route may be held: calls look theirs up only then.
    #[inline]
    pub(crate) fn any_held(&self) -> bool {
        self.held.load(Ordering::Acquire) > 0
    }

    fn shards(&self) -> &[Mutex<Shard>] {
        self.shards
            .get_or_init(|| (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect())
    }

    fn shard(&self, route: u64) -> MutexGuard<'_, Shard> {
        let at = ((route >> 32) % SHARDS as u64) as usize;
        self.shards()[at]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The call numbered `call` of `route` was told at `now` to wait until `until`. Answers
    /// whether the route is held now.
    pub(crate) fn told(&self, route: u64, call: u64, now: Instant, until: Instant) -> bool {
        if self.watched.load(Ordering::Acquire) >= MAX_ROUTES {
            self.forget_all_passed(now);
        }
        let mut shard = self.shard(route);
        if let Some(known) = shard.get_mut(&route)
            && known.until > now
        {
            if known.first != call && !known.held {
                known.held = true;
                self.held.fetch_add(1, Ordering::AcqRel);
            }
            // The server's latest word about the route.
            known.until = until;
            return known.held;
        }
        if let Some(gone) = shard.remove(&route) {
            self.forgot(&gone);
        }
        if self.watched.load(Ordering::Acquire) >= MAX_ROUTES {
            return false; // unwatched: each call waits its own time
        }
        shard.insert(
            route,
            Route {
                until,
                first: call,
                held: false,
            },
        );
        self.watched.fetch_add(1, Ordering::AcqRel);
        false
    }

    /// Until when `route` is held at `now`, if it is; a route whose time has passed is forgotten.
    pub(crate) fn held_until(&self, route: u64, now: Instant) -> Option<Instant> {
        self.sweep(now);
        let mut shard = self.shard(route);
        let known = shard.get(&route)?;
        if known.until <= now {
            let gone = shard.remove(&route).expect("found above");
            self.forgot(&gone);
            return None;
        }
        known.held.then_some(known.until)
    }

    /// Forgets every route whose time has passed, at most once per [`SWEEP_EVERY`].
    fn sweep(&self, now: Instant) {
        let ms = |at: Instant| {
            u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
        };
        let due = self.next_sweep.load(Ordering::Relaxed);
        let now_ms = ms(now);
        if now_ms < due {
            return;
        }
        let next = now_ms.saturating_add(SWEEP_EVERY.as_millis() as u64);
        if self
            .next_sweep
            .compare_exchange(due, next, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return; // another call sweeps
        }
        self.forget_all_passed(now);
    }

    /// Forgets every route whose time has passed; call with no shard locked.
    fn forget_all_passed(&self, now: Instant) {
        for shard in self.shards().iter() {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            self.forget_passed(&mut shard, now);
        }
    }

    fn forget_passed(&self, shard: &mut Shard, now: Instant) {
        shard.retain(|_, route| {
            let keep = route.until > now;
            if !keep {
                self.forgot(route);
            }
            keep
        });
    }

    fn forgot(&self, route: &Route) {
        self.watched.fetch_sub(1, Ordering::AcqRel);
        if route.held {
            self.held.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Routes watched now, held or not.
    #[cfg(test)]
    fn watched(&self) -> usize {
        self.watched.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn one_calls_answers_hold_nothing_two_calls_hold_the_route() {
        let routes = Routes::new();
        let now = Instant::now();
        assert!(!routes.told(7, 1, now, now + secs(30)));
        // The same call's retry is told again: still one call's word.
        assert!(!routes.told(7, 1, now + secs(1), now + secs(31)));
        assert_eq!(routes.held_until(7, now + secs(2)), None);
        assert!(!routes.any_held());
        // Another call of the route: held until the latest answer's time.
        assert!(routes.told(7, 2, now + secs(2), now + secs(20)));
        assert!(routes.any_held());
        assert_eq!(routes.held_until(7, now + secs(3)), Some(now + secs(20)));
        // Another route is not held.
        assert_eq!(routes.held_until(8, now + secs(3)), None);
        // Past its time the route is forgotten.
        assert_eq!(routes.held_until(7, now + secs(20)), None);
        assert!(!routes.any_held());
        assert_eq!(routes.watched(), 0);
    }

    #[test]
    fn an_answer_after_the_first_calls_time_watches_afresh() {
        let routes = Routes::new();
        let now = Instant::now();
        routes.told(7, 1, now, now + secs(1));
        assert!(!routes.told(7, 2, now + secs(2), now + secs(3)));
        assert_eq!(routes.held_until(7, now + secs(2)), None);
        assert_eq!(routes.watched(), 1);
    }

    #[test]
    fn routes_whose_time_passed_are_forgotten_without_being_looked_up() {
        let routes = Routes::new();
        let now = Instant::now();
        for route in 0..100u64 {
            routes.told(route << 32, 1, now, now + secs(5));
            routes.told(route << 32, 2, now, now + secs(5));
        }
        assert_eq!(routes.watched(), 100);
        // One lookup of another route, past their time, sweeps them all.
        assert_eq!(routes.held_until(u64::MAX, now + secs(6)), None);
        assert_eq!(routes.watched(), 0);
        assert!(!routes.any_held());
    }

    #[test]
    fn the_map_is_bounded_and_never_drops_a_route_whose_time_runs() {
        let routes = Routes::new();
        let now = Instant::now();
        for route in 0..MAX_ROUTES as u64 {
            routes.told(route, 1, now, now + secs(60));
        }
        routes.told(0, 2, now, now + secs(60));
        // Full: a new route goes unwatched, the held one stays.
        assert!(!routes.told(u64::MAX, 1, now, now + secs(60)));
        assert!(!routes.told(u64::MAX, 2, now, now + secs(60)));
        assert_eq!(routes.watched(), MAX_ROUTES);
        assert_eq!(routes.held_until(0, now + secs(1)), Some(now + secs(60)));
        // Once their time passed, room is made.
        assert!(!routes.told(u64::MAX, 1, now + secs(61), now + secs(90)));
        assert_eq!(routes.watched(), 1);
    }
}
