//! Recent attempt latencies per route, for a hedging delay at a percentile of them: a DDSketch
//! (relative error 1%) per window of [`WINDOW`] attempts, the window before kept while the next
//! fills.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::Uri;
use sketches_ddsketch::{Config, DDSketch};

/// Attempts per window.
const WINDOW: usize = 1000;
/// A route with fewer attempts measured has no percentile yet: it is not hedged.
pub(crate) const MIN_SAMPLES: usize = 20;
/// The most routes measured at once; past that the one measured least is forgotten.
const MAX_ROUTES: usize = 1024;
/// How many attempts between two computations of a route's percentile.
const REFRESH: usize = 16;

struct Route {
    current: DDSketch,
    previous: Option<DDSketch>,
    /// The percentile as last computed, and how many attempts ago.
    cached: Option<(f64, Duration)>,
    since: usize,
}

impl Route {
    fn new() -> Self {
        Self {
            current: DDSketch::new(Config::defaults()),
            previous: None,
            cached: None,
            since: 0,
        }
    }

    fn measured(&self) -> usize {
        self.current.count() + self.previous.as_ref().map_or(0, DDSketch::count)
    }

    /// The `q` quantile of the fullest recent window.
    fn quantile(&self, q: f64) -> Option<Duration> {
        let sketch = match &self.previous {
            Some(previous) if self.current.count() < WINDOW / 4 => previous,
            _ if self.current.count() >= MIN_SAMPLES => &self.current,
            _ => return None,
        };
        let seconds = sketch.quantile(q).ok().flatten()?;
        Some(Duration::from_secs_f64(seconds.max(0.0)))
    }
}

pub(crate) struct Latencies {
    routes: Mutex<HashMap<u64, Route>>,
    hasher: RandomState,
}

impl std::fmt::Debug for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Latencies")
            .field("routes", &routes.len())
            .finish()
    }
}

impl Latencies {
    pub(crate) fn new() -> Self {
        Self {
            routes: Mutex::new(HashMap::new()),
            hasher: RandomState::new(),
        }
    }

    /// The route of a request to `uri`: its server and path.
    pub(crate) fn route(&self, uri: &Uri) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        hasher.write(uri.authority().map_or("", |a| a.as_str()).as_bytes());
        hasher.write_u8(0xff);
        hasher.write(uri.path().as_bytes());
        hasher.finish()
    }

    /// An attempt of `route` answered after `latency`.
    pub(crate) fn record(&self, route: u64, latency: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if !routes.contains_key(&route) && routes.len() >= MAX_ROUTES {
            let least = routes
                .iter()
                .min_by_key(|(_, r)| r.measured())
                .map(|(key, _)| *key);
            if let Some(least) = least {
                routes.remove(&least);
            }
        }
        let known = routes.entry(route).or_insert_with(Route::new);
        known.current.add(latency.as_secs_f64());
        known.since += 1;
        if known.current.count() >= WINDOW {
            let full = std::mem::replace(&mut known.current, DDSketch::new(Config::defaults()));
            known.previous = Some(full);
        }
    }

    /// The `q` quantile of `route`'s recent latencies; `None` until [`MIN_SAMPLES`] are measured.
    pub(crate) fn percentile(&self, route: u64, q: f64) -> Option<Duration> {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let known = routes.get_mut(&route)?;
        match known.cached {
            Some((cached_q, delay)) if cached_q == q && known.since < REFRESH => Some(delay),
            _ => {
                let delay = known.quantile(q)?;
                known.cached = Some((q, delay));
                known.since = 0;
                Some(delay)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn no_percentile_until_enough_attempts_are_measured() {
        let latencies = Latencies::new();
        let route = latencies.route(&Uri::from_static("http://api.test/items"));
        for _ in 0..MIN_SAMPLES - 1 {
            latencies.record(route, ms(1));
        }
        assert_eq!(latencies.percentile(route, 0.95), None);
        latencies.record(route, ms(1));
        assert!(latencies.percentile(route, 0.95).is_some());
    }

    #[test]
    fn the_percentile_is_the_routes_within_the_sketchs_error() {
        let latencies = Latencies::new();
        let fast = latencies.route(&Uri::from_static("http://api.test/fast"));
        let slow = latencies.route(&Uri::from_static("http://api.test/slow"));
        for i in 1..=100 {
            latencies.record(fast, ms(i));
            latencies.record(slow, ms(10 * i));
        }
        let p95 = latencies.percentile(fast, 0.95).unwrap();
        assert!(p95 >= ms(93) && p95 <= ms(97), "{p95:?}");
        let p95 = latencies.percentile(slow, 0.95).unwrap();
        assert!(p95 >= ms(930) && p95 <= ms(970), "{p95:?}");
    }

    #[test]
    fn old_latencies_age_out_a_window_later() {
        let latencies = Latencies::new();
        let route = latencies.route(&Uri::from_static("http://api.test/items"));
        for _ in 0..WINDOW {
            latencies.record(route, ms(100));
        }
        for _ in 0..WINDOW {
            latencies.record(route, ms(1));
        }
        let p95 = latencies.percentile(route, 0.95).unwrap();
        assert!(p95 <= ms(2), "{p95:?}");
    }
}
