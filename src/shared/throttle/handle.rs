//! [`Throttle`]: the handle every clone of a policy shares, and what a call asks of it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::Context;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, StatusCode, Uri};
use tokio::time::Instant;

use super::authority::Authority;
use super::fleet::{FleetLane, Throttled};
use super::lane::{later, Bounds, Lane, Place, Refusal, Turn};
use super::lanes::{Entry, Lanes};
use super::routes::Routes;
use super::scope::{Scope, ScopeFn, Scoping, Target};
use super::sends::Sends;
use crate::shared::store::{Engage, Inner as StoreInner, Store};
use crate::wait::rate_limit::rate_limit_with;
use crate::wait::retry_after::retry_after_with;

/// The most requests waiting in one scope's line, by default.
pub(crate) const DEFAULT_MAX_QUEUE: usize = 1024;

/// Per-scope rates and lines, shared by every clone of this handle.
///
/// See the [module](super) for what it learns from, what a scope is and how requests wait.
///
/// ```
/// use std::time::Duration;
/// use tower_http_retry::throttle::Throttle;
/// use tower_http_retry::RetryPolicy;
///
/// let batch = RetryPolicy::default().throttle(Throttle::new().from_first_request());
/// let interactive =
///     RetryPolicy::default().throttle(Throttle::new().shed(Duration::from_millis(500)));
/// let unthrottled = RetryPolicy::default().no_throttle();
/// # let _ = (batch, interactive, unthrottled);
/// ```
#[derive(Clone)]
pub struct Throttle {
    pub(super) shared: Arc<Shared>,
}

#[derive(Clone)]
struct Config {
    bounds: Bounds,
    from_first_request: bool,
    scope_by: Option<ScopeFn>,
}

pub(super) struct Shared {
    config: Config,
    pub(super) scoping: Scoping,
    pub(super) lanes: Lanes,
    /// Routes that several calls were told to wait for.
    routes: Routes,
    /// The rate calls are sent at before any scope is engaged, for a scope's first rate.
    sends: Sends,
    /// Numbers places in line and waiters.
    ids: AtomicU64,
    /// The store whose schedules this throttle follows, if any.
    store: Option<Store>,
    pub(super) fleet: Option<Arc<StoreInner>>,
}

/// An attempt's place in a scope's line; leaving the line when dropped.
pub(crate) struct Waiter {
    throttle: Throttle,
    key: u64,
    id: u64,
    entered: Instant,
}

/// What an attempt that asked to leave was told.
pub(crate) enum Entered {
    /// Leave now; the scope's key, when the request names one.
    Go {
        sent: Instant,
        scope: Option<u64>,
    },
    Wait(Waiter, Instant),
    /// Its route is held (several of its calls were told to wait): ask again at this instant.
    Held(Instant),
    Refused(Refusal),
}

/// Where an attempt goes, for the throttle: its URI, its headers when known, and the wrapped
/// service it goes through (for a request that names no server).
#[derive(Clone, Copy)]
pub(crate) struct Sent<'a> {
    pub(crate) uri: &'a Uri,
    /// Its method, when known: with the scope and the path, its route.
    pub(crate) method: Option<&'a Method>,
    pub(crate) headers: Option<&'a HeaderMap>,
    pub(crate) origin: u64,
    /// The scope's key, when the throttle found it as it let the attempt go: its answer is
    /// learned from without finding it again.
    pub(crate) scope: Option<u64>,
}

impl<'a> Sent<'a> {
    /// A request to `target`, through no service in particular.
    fn of(target: &'a impl Target) -> Self {
        let (uri, headers) = target.target();
        Self {
            uri,
            method: None,
            headers,
            origin: 0,
            scope: None,
        }
    }

    /// A request with `head`, through the service `origin` wraps.
    pub(crate) fn head(head: &'a http::request::Parts, origin: u64) -> Self {
        Self {
            uri: &head.uri,
            method: Some(&head.method),
            headers: Some(&head.headers),
            origin,
            scope: None,
        }
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::with(
            Config {
                bounds: Bounds {
                    max_queue: DEFAULT_MAX_QUEUE,
                    shed_after: None,
                },
                from_first_request: false,
                scope_by: None,
            },
            None,
        )
    }
}

impl Throttle {
    /// A throttle in pace mode that engages on a scope's first throttling answer.
    ///
    /// ```
    /// use tower_http_retry::throttle::Throttle;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let throttle = Throttle::new();
    /// let policy = RetryPolicy::default().throttle(throttle.clone());
    /// # let _ = policy;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    fn with(config: Config, store: Option<Store>) -> Self {
        let fleet = store.as_ref().map(Store::inner);
        let shared = Arc::new(Shared {
            scoping: Scoping::new(config.scope_by.clone(), fleet.is_some()),
            config,
            lanes: Lanes::new(),
            routes: Routes::new(),
            sends: Sends::new(),
            ids: AtomicU64::new(0),
            fleet,
            store,
        });
        if let Some(store) = &shared.fleet {
            let me: Weak<dyn Engage> = Arc::downgrade(&shared) as Weak<Shared>;
            store.follow(me);
        }
        Self { shared }
    }

    /// A throttle with `config` on this throttle's store.
    fn reconfigured(&self, config: Config) -> Self {
        Self::with(config, self.shared.store.clone())
    }

    /// Follows one schedule per scope with every throttle on `store`: across processes when it
    /// is a [Redis store](crate::store#backends), the fleet sends to each scope at one rate,
    /// learned once for the fleet, and waits out a `Retry-After` as one client. See
    /// [Fleets](crate::throttle#fleets) in the module documentation. Call within a tokio runtime, so that
    /// the store's task can tell this throttle which scopes the fleet has engaged.
    ///
    /// Configure before use: this returns a new throttle that has learned nothing yet.
    ///
    /// ```
    /// use tower_http_retry::store::Store;
    /// use tower_http_retry::throttle::Throttle;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = Store::local(); // `Store::redis(url)?` for a fleet of processes
    /// let throttle = Throttle::new().store(&store);
    /// let policy = RetryPolicy::default().throttle(throttle);
    /// # let _ = policy;
    /// # }
    /// ```
    pub fn store(self, store: &Store) -> Self {
        Self::with(self.shared.config.clone(), Some(store.clone()))
    }

    /// Shed mode: an attempt whose turn is more than `max_wait` away fails at once with a
    /// [`Shed`](super::Shed) error instead of waiting. `Duration::ZERO` sheds every attempt that
    /// would wait at all.
    ///
    /// Configure before use: this returns a new throttle that has learned nothing yet.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::throttle::Throttle;
    ///
    /// let throttle = Throttle::new().shed(Duration::from_secs(1));
    /// # let _ = throttle;
    /// ```
    pub fn shed(self, max_wait: Duration) -> Self {
        let mut config = self.shared.config.clone();
        config.bounds.shed_after = Some(max_wait);
        self.reconfigured(config)
    }

    /// Pace mode (the default): attempts wait in line for their turn.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_http_retry::throttle::Throttle;
    ///
    /// let throttle = Throttle::new().shed(Duration::from_secs(1)).pace();
    /// # let _ = throttle;
    /// ```
    pub fn pace(self) -> Self {
        let mut config = self.shared.config.clone();
        config.bounds.shed_after = None;
        self.reconfigured(config)
    }

    /// At most `max` requests wait in one scope's line (at least 1); a request arriving at a full
    /// line is shed. Default 1024.
    ///
    /// ```
    /// use tower_http_retry::throttle::Throttle;
    ///
    /// let throttle = Throttle::new().max_queue(100);
    /// # let _ = throttle;
    /// ```
    pub fn max_queue(self, max: usize) -> Self {
        let mut config = self.shared.config.clone();
        config.bounds.max_queue = max.max(1);
        self.reconfigured(config)
    }

    /// Engages on the first request to each scope, not on its first throttling answer: the rate
    /// starts at 2 requests per second and doubles every 500 ms until the server pushes back. For
    /// batch jobs that start with a burst at a rate-limited API.
    ///
    /// ```
    /// use tower_http_retry::throttle::Throttle;
    ///
    /// let throttle = Throttle::new().from_first_request();
    /// # let _ = throttle;
    /// ```
    pub fn from_first_request(self) -> Self {
        let mut config = self.shared.config.clone();
        config.from_first_request = true;
        self.reconfigured(config)
    }

    /// Narrows each scope by what `by` returns for a request (its URI and headers), past its
    /// server and credential: for quotas per model, per endpoint or per tenant. `None` leaves the
    /// scope as it is. What it returns is hashed, never kept.
    ///
    /// Configure before use: this returns a new throttle that has learned nothing yet.
    ///
    /// ```
    /// use tower_http_retry::throttle::Throttle;
    ///
    /// // One quota per model (`/v1/models/{model}:generate`) and one per tenant header.
    /// let per_model = Throttle::new().scope_by(|uri, _| {
    ///     uri.path().strip_prefix("/v1/models/").map(|rest| rest.split(':').next().unwrap_or(rest).to_owned())
    /// });
    /// let per_tenant = Throttle::new().scope_by(|_, headers| {
    ///     headers.get("x-tenant").and_then(|v| v.to_str().ok()).map(str::to_owned)
    /// });
    /// # let _ = (per_model, per_tenant);
    /// ```
    pub fn scope_by<F>(self, by: F) -> Self
    where
        F: Fn(&Uri, &HeaderMap) -> Option<String> + Send + Sync + 'static,
    {
        let mut config = self.shared.config.clone();
        config.scope_by = Some(Arc::new(by));
        self.reconfigured(config)
    }

    /// Holds every attempt in `target`'s scope for `delay` from now, as a `Retry-After` would. A
    /// target that names no server is ignored; a delay too large for the clock holds for a year.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::Uri;
    /// use tokio::time::Instant;
    /// use tower_http_retry::throttle::Throttle;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let throttle = Throttle::new();
    /// let api: Uri = "https://api.example/v1/items".parse().unwrap();
    /// throttle.hold(&api, Duration::from_secs(30));
    /// assert_eq!(throttle.held_until(&api), Some(Instant::now() + Duration::from_secs(30)));
    /// # }
    /// ```
    pub fn hold(&self, target: &impl Target, delay: Duration) {
        let sent = Sent::of(target);
        let now = Instant::now();
        self.shared.lanes.sweep(now);
        let Some(scope) = self.scope(sent) else {
            return;
        };
        let mut shard = self.shared.lanes.shard(scope.key);
        let mut exchange = None;
        if let Some(entry) = self.shared.lane(&mut shard, &scope, now, true, true) {
            entry.lane.hold(now, later(now, delay));
            entry.lane.last_signal = now;
            if !delay.is_zero() {
                exchange = entry.report(scope.key, |fleet| {
                    fleet.report(now, None, Some(delay), None)
                });
            }
        }
        drop(shard);
        if let Some(exchange) = exchange {
            self.send(exchange);
        }
    }

    /// When attempts in `target`'s scope may leave again, if a server-given time holds it now.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::Uri;
    /// use tower_http_retry::throttle::Throttle;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let throttle = Throttle::new();
    /// let api: Uri = "https://api.example/".parse().unwrap();
    /// assert_eq!(throttle.held_until(&api), None);
    /// throttle.hold(&api, Duration::from_secs(5));
    /// tokio::time::advance(Duration::from_secs(5)).await;
    /// assert_eq!(throttle.held_until(&api), None, "the hold has ended");
    /// # }
    /// ```
    pub fn held_until(&self, target: &impl Target) -> Option<Instant> {
        self.read(target, |lane, now| {
            lane.not_before.filter(|until| *until > now)
        })
        .flatten()
    }

    /// The rate `target`'s scope is paced at now, in requests per second; `None` when it is not
    /// throttled.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::Uri;
    /// use tower_http_retry::throttle::Throttle;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let throttle = Throttle::new();
    /// let api: Uri = "https://api.example/".parse().unwrap();
    /// assert_eq!(throttle.rate(&api), None);
    /// throttle.hold(&api, Duration::from_secs(1));
    /// assert!(throttle.rate(&api).is_some());
    /// # }
    /// ```
    pub fn rate(&self, target: &impl Target) -> Option<f64> {
        self.read(target, Lane::settled_rate)
    }

    /// How many scopes are throttled now.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::Request;
    /// use tower_http_retry::throttle::Throttle;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let throttle = Throttle::new();
    /// for key in ["alice", "bob"] {
    ///     let request = Request::get("https://api.example/").header("x-api-key", key).body(()).unwrap();
    ///     throttle.hold(&request, Duration::from_secs(1));
    /// }
    /// assert_eq!(throttle.scopes(), 2, "one per key");
    /// # }
    /// ```
    pub fn scopes(&self) -> usize {
        self.shared.lanes.engaged()
    }

    fn read<T>(&self, target: &impl Target, f: impl FnOnce(&mut Lane, Instant) -> T) -> Option<T> {
        let sent = Sent::of(target);
        let now = Instant::now();
        self.shared.lanes.sweep(now);
        let scope = self.scope(sent)?;
        let mut shard = self.shared.lanes.shard(scope.key);
        let entry = self.shared.lanes.find(&mut shard, scope.key, now)?;
        Some(f(&mut entry.lane, now))
    }

    fn scope<'a>(&self, sent: Sent<'a>) -> Option<Scope<'a>> {
        self.shared.scoping.of(sent.uri, sent.headers, sent.origin)
    }

    /// Whether a call must ask before leaving: an atomic load or two, unless engaged from the
    /// first request.
    #[inline]
    pub(crate) fn is_engaged(&self) -> bool {
        let shared = &*self.shared;
        shared.config.from_first_request || shared.lanes.engaged() > 0 || shared.routes.any_held()
    }

    /// Counts a call that did not need to ask (nothing engaged): the measure of the rate sent at,
    /// which a scope engaged later starts from. One relaxed atomic add; a clock read every
    /// [`Sends`] period.
    #[inline]
    pub(crate) fn count(&self) {
        self.shared.sends.count();
    }

    /// An attempt to `sent` that may not leave before `earliest` asks to leave at `now`. `place`
    /// is the call's place in line, given at its first ask.
    pub(crate) fn enter(
        &self,
        sent: Sent<'_>,
        place: &mut Option<Place>,
        earliest: Instant,
        now: Instant,
        deadline: Option<Instant>,
    ) -> Entered {
        let bounds = self.shared.config.bounds;
        self.shared.lanes.sweep(now);
        let Some(scope) = self.scope(sent) else {
            return Entered::Go {
                sent: now,
                scope: None,
            };
        };
        let id = self.shared.ids.fetch_add(1, Ordering::Relaxed);
        let place = *place.get_or_insert((now, id));
        if let Some(held) = self.route_held(sent, scope.key, now) {
            return match held {
                until if deadline.is_some_and(|deadline| until > deadline) => {
                    Entered::Refused(Refusal::Deadline)
                }
                until => match bounds.shed_after {
                    Some(limit) if until - now > limit => {
                        Entered::Refused(Refusal::Shed(until - now))
                    }
                    _ => Entered::Held(until),
                },
            };
        }
        let mut shard = self.shared.lanes.shard(scope.key);
        let create = self.shared.config.from_first_request;
        let Some(entry) = self.shared.lane(&mut shard, &scope, now, create, false) else {
            return Entered::Go {
                sent: now,
                scope: Some(scope.key),
            };
        };
        let turn = entry.lane.enter(id, place, earliest, now, deadline, bounds);
        let lease = entry.lease(scope.key, now);
        drop(shard);
        if let Some(exchange) = lease {
            self.send(exchange);
        }
        match turn {
            Turn::Go => Entered::Go {
                sent: now,
                scope: Some(scope.key),
            },
            Turn::Refused(why) => Entered::Refused(why),
            Turn::Until(at) => {
                let waiter = Waiter {
                    throttle: self.clone(),
                    key: scope.key,
                    id,
                    entered: now,
                };
                let at = self.shed_at(&waiter).map_or(at, |shed| at.min(shed));
                Entered::Wait(waiter, at)
            }
        }
    }

    /// Until when the route of `sent` (in the scope keyed `scope`) is held, if it is.
    fn route_held(&self, sent: Sent<'_>, scope: u64, now: Instant) -> Option<Instant> {
        let routes = &self.shared.routes;
        let method = sent.method.filter(|_| routes.any_held())?;
        let route = self.shared.scoping.route_of(scope, method, sent.uri.path());
        routes.held_until(route, now)
    }

    /// A number for a call, for [`told`](Self::told): which answers came to different calls.
    pub(crate) fn call_number(&self) -> u64 {
        self.shared.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// The call numbered `call` that went to `sent` was told by the server to wait `delay` (a
    /// 503's `Retry-After`, a gRPC pushback): its own wait; once another call of the route is
    /// told too while this time runs, the route is held.
    pub(crate) fn told(&self, sent: Sent<'_>, call: u64, delay: Duration) {
        let (Some(method), Some(scope)) = (sent.method, self.scope(sent)) else {
            return;
        };
        let now = Instant::now();
        let route = self
            .shared
            .scoping
            .route_of(scope.key, method, sent.uri.path());
        let held = self.shared.routes.told(route, call, now, later(now, delay));
        if held {
            tracing::debug!(
                http.request.method = %method,
                url.path = sent.uri.path(),
                server.address = sent.uri.host(),
                delay_ms = delay.as_millis() as u64,
                "route held: several calls were told to wait"
            );
        }
    }

    /// Keeps `place` in the line of `sent`'s scope for a retry that will ask at `earliest`, when
    /// the scope is throttled: those who arrive during the retry's wait leave after it. Dropping
    /// the waiter gives the place up.
    pub(crate) fn reserve(
        &self,
        sent: Sent<'_>,
        place: Place,
        earliest: Instant,
        now: Instant,
    ) -> Option<Waiter> {
        let scope = self.scope(sent)?;
        let mut shard = self.shared.lanes.shard(scope.key);
        let entry = self.shared.lanes.find(&mut shard, scope.key, now)?;
        let id = self.shared.ids.fetch_add(1, Ordering::Relaxed);
        let bounds = self.shared.config.bounds;
        if !entry.lane.reserve(id, place, earliest, bounds) {
            return None;
        }
        // Its wait in line (for shed mode) starts when its own wait ends.
        Some(Waiter {
            throttle: self.clone(),
            key: scope.key,
            id,
            entered: earliest,
        })
    }

    /// The retry that reserved `waiter`'s place asks for its turn, going to `sent`: polled in
    /// line where it reserved; entered anew when it goes to another scope (a before-retry hook
    /// sent it elsewhere or with another key).
    pub(crate) fn resume(
        &self,
        waiter: Waiter,
        sent: Sent<'_>,
        place: &mut Option<Place>,
        now: Instant,
        deadline: Option<Instant>,
        cx: &Context<'_>,
    ) -> Result<(Turn, Waiter), Entered> {
        if self
            .scope(sent)
            .is_some_and(|scope| scope.key == waiter.key)
        {
            let turn = self.poll_turn(&waiter, now, cx);
            return Ok((turn, waiter));
        }
        drop(waiter);
        Err(self.enter(sent, place, now, now, deadline))
    }

    /// A place in line as of `now`, for a call whose retry will ask later: it keeps the place it
    /// had when it was told to wait, ahead of those that arrive meanwhile.
    pub(crate) fn place(&self, now: Instant) -> Place {
        (now, self.shared.ids.fetch_add(1, Ordering::Relaxed))
    }

    /// A waiting attempt asks again.
    pub(crate) fn poll_turn(&self, waiter: &Waiter, now: Instant, cx: &Context<'_>) -> Turn {
        let mut shard = self.shared.lanes.shard(waiter.key);
        let Some(entry) = shard.get_mut(&waiter.key) else {
            return Turn::Go; // forgotten, so nothing holds it
        };
        let lane = &mut entry.lane;
        if let Some(shed) = self.shed_at(waiter)
            && now >= shed
        {
            let retry_in = lane.estimate(waiter.id, now);
            lane.cancel(waiter.id, now);
            return Turn::Refused(Refusal::Shed(retry_in));
        }
        let turn = lane.poll(waiter.id, now, cx.waker());
        let lease = entry.lease(waiter.key, now);
        drop(shard);
        if let Some(exchange) = lease {
            self.send(exchange);
        }
        match turn {
            Turn::Until(at) => Turn::Until(self.shed_at(waiter).map_or(at, |shed| at.min(shed))),
            turn => turn,
        }
    }

    fn shed_at(&self, waiter: &Waiter) -> Option<Instant> {
        let limit = self.shared.config.bounds.shed_after?;
        Some(later(waiter.entered, limit))
    }

    /// Learns from a response to an attempt to `sent`, sent at `sent_at` (known when the throttle
    /// admitted it); the caller passes gRPC's `RESOURCE_EXHAUSTED` as a 429. Reads no header and no
    /// clock for a response
    /// that is not a 429 while no scope is throttled: that check is inlined where the response is
    /// judged. Answers whether the scope is now paced, so that a throttling retry leaves at the
    /// rate it admits.
    #[inline]
    pub(crate) fn observe(
        &self,
        sent: Sent<'_>,
        status: StatusCode,
        headers: &HeaderMap,
        sent_at: Option<Instant>,
        max: Duration,
    ) -> bool {
        if status != StatusCode::TOO_MANY_REQUESTS && !self.is_engaged() {
            return false;
        }
        self.learn(sent, status, headers, sent_at, max)
    }

    fn learn(
        &self,
        sent: Sent<'_>,
        status: StatusCode,
        headers: &HeaderMap,
        sent_at: Option<Instant>,
        max: Duration,
    ) -> bool {
        let now = Instant::now();
        self.shared.lanes.sweep(now);
        let (key, mut scope) = match sent.scope {
            Some(key) => (key, None),
            None => {
                let Some(scope) = self.scope(sent) else {
                    return false;
                };
                (scope.key, Some(scope))
            }
        };
        let throttling_status = status == StatusCode::TOO_MANY_REQUESTS;
        // The wall clock only for a date with no `Date` header to measure it from.
        let asked = throttling_status
            .then(|| retry_after_with(headers, SystemTime::now))
            .flatten();
        let quota = rate_limit_with(headers, SystemTime::now);
        let spent = quota.is_some_and(|q| q.is_exhausted());
        // `Retry-After: 0` says the server needs no pause (a load balancer's hint to try again at
        // once): it is not asking for a lower rate.
        let immediate = asked.is_some_and(|delay| delay.is_zero());
        let throttling = throttling_status && !immediate;
        let create = throttling || spent || self.shared.config.from_first_request;
        let mut shard = self.shared.lanes.shard(key);
        let found = || scope.take().or_else(|| self.scope(sent));
        let Some((entry, fresh)) = self.shared.lane_or_new(&mut shard, key, found, now, create)
        else {
            return false;
        };
        let lane = &mut entry.lane;
        // The answer that engages the scope: its rate starts near the rate it was sent at.
        let engages = fresh && throttling && !self.shared.config.from_first_request;
        let sending = engages.then(|| self.shared.sends.rate(now)).flatten();
        if engages {
            lane.engage(now, sending);
        }
        // The rate is judged first: a hold stops the rate's clock from now on.
        let backlogged = !lane.is_idle();
        if throttling && !fresh {
            lane.control
                .throttled(now, sent_at, lane.spacing, backlogged, asked.is_some());
        } else if !throttling && !spent {
            lane.control.admitted(now);
            if let Some(fleet) = lane.fleet.as_mut() {
                fleet.admitted();
            }
        }
        if let Some(delay) = asked {
            lane.hold(now, later(now, delay.min(max)));
        }
        if let Some(quota) = quota {
            match (quota.remaining, quota.reset) {
                // Retry-After, when given too, is the server's word for this answer.
                (0, Some(_)) if asked.is_some() => {}
                (0, Some(reset)) => lane.hold(now, later(now, reset.min(max))),
                (remaining, Some(reset)) => lane.control.exact(now, remaining, reset),
                _ => {}
            }
        }
        if throttling || spent {
            lane.last_signal = now;
        }
        lane.wake_first(now);
        let exchange = entry.report(key, |fleet| {
            let hold = match quota {
                Some(q) if asked.is_none() && q.remaining == 0 => q.reset,
                _ => asked,
            };
            let hold = hold.map(|delay| delay.min(max)).filter(|d| !d.is_zero());
            let exact = quota.and_then(|q| Some((q.remaining, q.reset?)).filter(|(r, _)| *r > 0));
            let throttled = throttling.then_some(Throttled {
                sent: sent_at.filter(|_| !fresh),
                held: asked.is_some(),
                backlogged,
                sending,
            });
            fleet.report(now, throttled, hold, exact)
        });
        drop(shard);
        if let Some(exchange) = exchange {
            self.send(exchange);
        }
        throttling
    }
}

impl Shared {
    /// The lane of `scope`; made when `create` (then counted as engaged), `signal` when a
    /// throttling answer or a hold makes it.
    fn lane<'a>(
        &self,
        shard: &'a mut super::lanes::Shard,
        scope: &Scope<'_>,
        now: Instant,
        create: bool,
        signal: bool,
    ) -> Option<&'a mut Entry> {
        let found = self.lanes.find(shard, scope.key, now).is_some();
        if !found && !create {
            return None;
        }
        if found {
            return shard.get_mut(&scope.key);
        }
        self.make(
            shard,
            scope.key,
            scope.authority(),
            || scope.name(),
            now,
            signal,
        )
    }

    /// [`lane`](Self::lane) of the scope `key` for an answer, `found` giving the scope when a
    /// lane is to be made: whether it was made now, too.
    fn lane_or_new<'a, 's>(
        &self,
        shard: &'a mut super::lanes::Shard,
        key: u64,
        found: impl FnOnce() -> Option<Scope<'s>>,
        now: Instant,
        create: bool,
    ) -> Option<(&'a mut Entry, bool)> {
        if self.lanes.find(shard, key, now).is_some() {
            return shard.get_mut(&key).map(|entry| (entry, false));
        }
        if !create {
            return None;
        }
        let scope = found()?;
        let entry = self.make(shard, key, scope.authority(), || scope.name(), now, true)?;
        Some((entry, true))
    }

    pub(super) fn make<'a>(
        &self,
        shard: &'a mut super::lanes::Shard,
        key: u64,
        authority: Authority,
        name: impl FnOnce() -> String,
        now: Instant,
        signal: bool,
    ) -> Option<&'a mut Entry> {
        let fleet = &self.fleet;
        let make = || {
            let mut lane = Lane::new(now, signal);
            let name = fleet.as_ref().map(|store| {
                let name = name();
                lane.fleet = Some(FleetLane::new(
                    store.schedule_key(&name),
                    store.timeout(),
                    now,
                ));
                name
            });
            Entry {
                authority,
                name,
                lane,
            }
        };
        self.lanes.insert(shard, key, make, now)
    }
}

impl Waiter {
    /// The key of the scope whose line this is.
    pub(crate) fn scope(&self) -> u64 {
        self.key
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut shard = self.throttle.shared.lanes.shard(self.key);
        if let Some(entry) = shard.get_mut(&self.key) {
            entry.lane.cancel(self.id, now);
        }
    }
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.shared.config;
        f.debug_struct("Throttle")
            .field("shed_after", &config.bounds.shed_after)
            .field("max_queue", &config.bounds.max_queue)
            .field("from_first_request", &config.from_first_request)
            .field("scope_by", &config.scope_by.is_some())
            .field("scopes", &self.shared.lanes.engaged())
            .field("store", &self.shared.store)
            .finish()
    }
}
