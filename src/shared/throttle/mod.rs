//! The throttle: sends to each server at the rate it admits, learned from its answers, for first
//! attempts and retries alike.
//!
//! ```
//! use std::time::Duration;
//! use tower_http_retry::throttle::Throttle;
//! use tower_http_retry::{RetryLayer, RetryPolicy};
//!
//! // The default policy has a throttle of its own, in pace mode. Share one between layers so they
//! // share what they learn; shed mode fails at once when the wait would be longer than 2 s.
//! let throttle = Throttle::new().shed(Duration::from_secs(2));
//! let reads = RetryLayer::new(RetryPolicy::default().throttle(throttle.clone()));
//! let writes = RetryLayer::new(RetryPolicy::default().throttle(throttle));
//! # let _ = (reads, writes);
//! ```
//!
//! # What it learns from
//!
//! Per authority (scheme, host and port of the URI each attempt is actually sent to, after
//! [`before_retry`](crate::RetryPolicy::before_retry)):
//!
//! - a `429`, with or without headers, and a `503` with `Retry-After`: a throttling answer. The rate
//!   drops multiplicatively, then probes back up while requests succeed (see below). `Retry-After: 0`
//!   asks for no pause, and is no throttling answer;
//! - `Retry-After` on a 429 or 503, and a spent quota with its reset in the
//!   [rate-limit headers](crate::rate_limit): no attempt to the authority leaves before that time
//!   (at most the policy's [`max_retry_after`](crate::RetryPolicy::max_retry_after) away);
//! - rate-limit headers giving the remaining quota and its reset: the rate is exactly remaining over
//!   reset until the reset.
//!
//! The rate law: slow start (doubling every 500 ms from 2 requests per second) until the first
//! throttling answer, then a cut to 0.95 times the rate sent at (or the rate measured as admitted,
//! when clearly lower while requests were waiting: a burst allowance hid the server's rate), the
//! ceiling, then probing (1% of that ceiling per second, doubling every 10 s without a throttling
//! answer). A steady limit is probed less and less, since each overshoot costs a hold when the server
//! sends `Retry-After`: after an overshoot while probing (slow start's is too coarse a measure), the
//! rate climbs to 0.99 times the ceiling and stays there until the server has been quiet (no
//! throttling answer) for 30 s, and only then probes past the ceiling, as CUBIC's plateau does; each
//! overshoot near the same ceiling doubles that quiet time (up to 4 minutes) and quarters the
//! probing speed past it, and one at the plateau doubles its distance below the ceiling (up to 5%:
//! the sends' jitter, larger in a fleet, put requests closer together than the rate). An overshoot
//! at no more than the rate the last cut left refutes that cut's ceiling (slow start raced past the
//! limit while the sends lagged its rate, as they do on a starved machine or in a fleet whose
//! processes wake too late for their slots): the cut is to 0.9 of it, and each such cut in a row
//! squares the last (0.81, 0.66, ...), instead of 0.95 per overshoot, each of which costs a hold. A
//! limit that rises is still found, later. The rate grows only while it holds requests back (one
//! waits in line, or arrives before its turn): while nobody waits and the next request could leave
//! at once, neither slow start nor probing goes on, as TCP's window does not grow while the
//! application sends less than it allows. A client that goes quiet, or sends below the rate, comes
//! back at the rate it last used, not at one the law reached unused. This is AIMD with TCP's slow
//! start; AWS's adaptive retry mode (a CUBIC token bucket) and gRPC's retry throttling were the
//! models.
//!
//! # When it engages
//!
//! By default an authority is throttled from its first throttling answer until it has been quiet
//! (no throttling answer, nobody waiting) for 60 s. Until then calls to it pay one atomic load: no
//! lock, no lookup, no clock read, no allocation. [`Throttle::from_first_request`] engages it from
//! the first request to each authority instead (slow start from the start: a burst at a limiter
//! gets almost no 429, at the price of a lock per call and a ramp-up for servers that never limit).
//!
//! # Two ways to wait
//!
//! - **Pace** (the default): an attempt waits in line for its turn, first come first served (a
//!   retry keeps its call's place, so the request told to wait leaves exactly when its own policy
//!   says, ahead of those that arrived during its wait). A request whose turn would come after its
//!   call's deadline fails at once with the deadline error.
//! - **Shed** ([`Throttle::shed`]): an attempt whose turn is further away than the given wait fails
//!   at once, without being sent, with an [`Error`](crate::Error) for which
//!   [`is_shed`](crate::Error::is_shed) holds, whose history stops with
//!   [`StopReason::Shed`](crate::history::StopReason::Shed) and whose source is a [`Shed`] saying
//!   when to come back. No request waits in line longer than that.
//!
//! The line of each authority holds at most 1024 requests
//! ([`Throttle::max_queue`]); when it is full, a new request is shed (in either mode), so memory stays
//! bounded and callers learn at once that the server is saturated.
//!
//! # Fleets
//!
//! Processes that share a server's limit (one API key, many workers) share one throttle through a
//! [store](crate::store) with [`Throttle::store`]:
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn demo() -> Result<(), tower_http_retry::store::StoreError> {
//! use tower_http_retry::store::Store;
//! use tower_http_retry::throttle::Throttle;
//! use tower_http_retry::RetryPolicy;
//!
//! let store = Store::redis("redis://:secret@redis.internal:6379")?;
//! let policy = RetryPolicy::default().throttle(Throttle::new().store(&store));
//! # let _ = policy;
//! # Ok(())
//! # }
//! ```
//!
//! Per server, the store keeps one schedule, GCRA-style, on its own clock: the next free send
//! time, the hold the server gave, and the rate law above, applied once for the fleet. So:
//!
//! - the fleet sends at one rate: a throttling answer cuts it once per overshoot, not once per
//!   process (answers to slots issued before the cut are that same overshoot);
//! - a `Retry-After` holds the whole fleet, and after it the fleet's sends follow one another at
//!   the rate instead of leaving together;
//! - a server engaged by one process is engaged by every process within 100 ms (the store's
//!   background task reads which are).
//!
//! A process leases its next send slots (about 100 ms of them) and uses each at its time; when it
//! has not heard from the store in the 20 ms before a slot, it reads the schedule first, so that a
//! slot leased before another process's 429 is not used into the hold it brought. A slot the process
//! wakes too late for (more than 5% of an interval, or 5 ms) is left, since a late send would crowd
//! the next process's slot, and the time it stood for is told to the store, so that the fleet's
//! rate, like a process's, grows only while it holds sends back. Requests wait for
//! a lease at most the store's timeout. While the store fails or is slow, each process paces on its
//! own state, learned from its own answers all along (one warning per outage), and follows the
//! fleet's schedule again once the store answers. Not shared: the measure of the rate admitted
//! (which bounds the cut under a burst allowance), each process's line and its shed decisions.
//!
//! # The retry budget
//!
//! A retry of a throttling answer (429, or 503 with `Retry-After`) made under a throttle costs the
//! [retry budget](crate::budget) nothing: the throttle already keeps the load at what the server
//! admits, and the budget's job is to stop retries from multiplying the load. Other retries draw from
//! the budget as before.

mod authority;
pub(crate) mod control;
mod fleet;
mod lane;
mod shed;

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::Context;
use std::time::{Duration, SystemTime};

use http::{header, HeaderMap, StatusCode, Uri};
use tokio::time::Instant;

use crate::shared::store::{
    Engage, Inner as StoreInner, ScheduleCall, ScheduleReply, Store, StoreError,
};
use crate::wait::rate_limit::rate_limit_with;
use crate::wait::retry_after::retry_after_with;
use authority::Authority;
use fleet::FleetLane;
use lane::{Lane, Limits};
pub(crate) use lane::{Place, Refusal, Turn};
pub use shed::Shed;

/// The most requests waiting in one authority's line, by default.
pub(crate) const DEFAULT_MAX_QUEUE: usize = 1024;
/// The most authorities tracked at once; past it the quietest is forgotten.
const MAX_LANES: usize = 1024;
/// An authority quiet for this long (no throttling answer, nobody in line) is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// Per-authority rates and lines, shared by every clone of this handle.
///
/// See the [module](self) for what it learns from and how requests wait.
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
    shared: Arc<Shared>,
}

#[derive(Clone, Copy, Debug)]
struct Config {
    limits: Limits,
    from_first_request: bool,
}

struct Shared {
    config: Config,
    /// How many authorities have a lane: 0 lets every call through on one atomic load.
    engaged: AtomicUsize,
    /// Numbers places in line and waiters.
    ids: AtomicU64,
    state: Mutex<State>,
    /// The store whose schedules this throttle follows, if any.
    store: Option<Store>,
    fleet: Option<Arc<StoreInner>>,
}

#[derive(Default)]
struct State {
    lanes: Vec<(Authority, Lane)>,
}

/// An attempt's place in an authority's line; leaving the line when dropped.
pub(crate) struct Waiter {
    throttle: Throttle,
    authority: Authority,
    id: u64,
    entered: Instant,
}

/// What an attempt that asked to leave was told.
pub(crate) enum Entered {
    Go { sent: Instant },
    Wait(Waiter, Instant),
    Refused(Refusal),
}

impl Default for Throttle {
    fn default() -> Self {
        Self::with(
            Config {
                limits: Limits {
                    max_queue: DEFAULT_MAX_QUEUE,
                    shed_after: None,
                },
                from_first_request: false,
            },
            None,
        )
    }
}

impl Throttle {
    /// A throttle in pace mode that engages on an authority's first throttling answer.
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
        let shared = Arc::new(Shared {
            config,
            engaged: AtomicUsize::new(0),
            ids: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            fleet: store.as_ref().map(Store::inner),
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

    /// Follows one schedule per server with every throttle on `store`: across processes when it
    /// is a [Redis store](Store::redis), the fleet sends to each server at one rate, learned
    /// once for the fleet, and waits out a server's `Retry-After` as one client. See
    /// [Fleets](crate::throttle#fleets) in the module documentation. Call within a tokio runtime, so that
    /// the store's task can tell this throttle which servers the fleet has engaged.
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
        Self::with(self.shared.config, Some(store.clone()))
    }

    /// Shed mode: an attempt whose turn is more than `max_wait` away fails at once with a [`Shed`]
    /// error instead of waiting. `Duration::ZERO` sheds every attempt that would wait at all.
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
        let mut config = self.shared.config;
        config.limits.shed_after = Some(max_wait);
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
        let mut config = self.shared.config;
        config.limits.shed_after = None;
        self.reconfigured(config)
    }

    /// At most `max` requests wait in one authority's line (at least 1); a request arriving at a full
    /// line is shed. Default 1024.
    ///
    /// ```
    /// use tower_http_retry::throttle::Throttle;
    ///
    /// let throttle = Throttle::new().max_queue(100);
    /// # let _ = throttle;
    /// ```
    pub fn max_queue(self, max: usize) -> Self {
        let mut config = self.shared.config;
        config.limits.max_queue = max.max(1);
        self.reconfigured(config)
    }

    /// Engages on the first request to each authority, not on its first throttling answer: the rate
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
        let mut config = self.shared.config;
        config.from_first_request = true;
        self.reconfigured(config)
    }

    /// Holds every attempt to `uri`'s authority for `delay` from now, as a `Retry-After` would. A URI
    /// without a host is ignored; a delay too large for the clock holds for a year.
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
    pub fn hold(&self, uri: &Uri, delay: Duration) {
        let now = Instant::now();
        let mut state = self.lock();
        let mut report = None;
        if let Some(lane) = self.lane(&mut state, uri, now, true) {
            lane.hold(now, later(now, delay));
            lane.last_signal = now;
            if !delay.is_zero() {
                report = lane.fleet.as_mut().and_then(|fleet| {
                    let call = fleet.report(now, None, Some(delay), None)?;
                    Some((fleet.key.clone(), call))
                });
            }
        }
        drop(state);
        if let Some((key, call)) = report {
            self.exchange(uri, key, call, false);
        }
    }

    /// When attempts to `uri`'s authority may leave again, if a server-given time holds it now.
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
    pub fn held_until(&self, uri: &Uri) -> Option<Instant> {
        let now = Instant::now();
        let mut state = self.lock();
        let lane = self.lane(&mut state, uri, now, false)?;
        lane.not_before.filter(|until| *until > now)
    }

    /// The rate `uri`'s authority is paced at now, in requests per second; `None` when it is not
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
    pub fn rate(&self, uri: &Uri) -> Option<f64> {
        let now = Instant::now();
        let mut state = self.lock();
        let lane = self.lane(&mut state, uri, now, false)?;
        Some(lane.settled_rate(now))
    }

    /// Whether a call must ask before leaving: one atomic load, unless engaged from the first request.
    #[inline]
    pub(crate) fn is_engaged(&self) -> bool {
        let shared = &*self.shared;
        shared.config.from_first_request || shared.engaged.load(Ordering::Acquire) > 0
    }

    /// An attempt to `uri` that may not leave before `earliest` asks to leave at `now`. `place` is
    /// the call's place in line, given at its first ask.
    pub(crate) fn enter(
        &self,
        uri: &Uri,
        place: &mut Option<Place>,
        earliest: Instant,
        now: Instant,
        deadline: Option<Instant>,
    ) -> Entered {
        let limits = self.shared.config.limits;
        let id = self.shared.ids.fetch_add(1, Ordering::Relaxed);
        let place = *place.get_or_insert((now, id));
        let mut state = self.lock();
        let create = self.shared.config.from_first_request;
        let Some(lane) = self.lane(&mut state, uri, now, create) else {
            return Entered::Go { sent: now };
        };
        let turn = lane.enter(id, place, earliest, now, deadline, limits);
        let lease = Self::lease(lane, now);
        drop(state);
        if let Some((key, call)) = lease {
            self.exchange(uri, key, call, true);
        }
        match turn {
            Turn::Go => Entered::Go { sent: now },
            Turn::Refused(why) => Entered::Refused(why),
            Turn::Until(at) => {
                let authority = Authority::of(uri).expect("a lane has a host");
                let waiter = Waiter {
                    throttle: self.clone(),
                    authority,
                    id,
                    entered: now,
                };
                let at = self.shed_at(&waiter).map_or(at, |shed| at.min(shed));
                Entered::Wait(waiter, at)
            }
        }
    }

    /// A place in line as of `now`, for a call whose retry will ask later: it keeps the place it
    /// had when it was told to wait, ahead of those that arrive meanwhile.
    pub(crate) fn place(&self, now: Instant) -> Place {
        (now, self.shared.ids.fetch_add(1, Ordering::Relaxed))
    }

    /// A waiting attempt asks again.
    pub(crate) fn poll_turn(&self, waiter: &Waiter, now: Instant, cx: &Context<'_>) -> Turn {
        let mut state = self.lock();
        let Some(lane) = find(&mut state, &waiter.authority) else {
            return Turn::Go;
        };
        if let Some(shed) = self.shed_at(waiter)
            && now >= shed
        {
            let retry_in = lane.estimate(waiter.id, now);
            lane.cancel(waiter.id, now);
            return Turn::Refused(Refusal::Shed(retry_in));
        }
        let turn = lane.poll(waiter.id, now, cx.waker());
        let lease = Self::lease(lane, now);
        drop(state);
        if let Some((key, call)) = lease {
            self.send(waiter.authority.clone(), key, call, true);
        }
        match turn {
            Turn::Until(at) => Turn::Until(self.shed_at(waiter).map_or(at, |shed| at.min(shed))),
            turn => turn,
        }
    }

    /// The lease `lane` needs now, if any, with its key.
    fn lease(lane: &mut Lane, now: Instant) -> Option<(String, ScheduleCall)> {
        let waiting = lane.waiting();
        let fleet = lane.fleet.as_mut()?;
        let call = fleet.lease(now, waiting)?;
        Some((fleet.key.clone(), call))
    }

    /// Sends `call` to the schedule of `uri`'s authority in the background: nothing waits for it
    /// but the requests that need its slots, and those no longer than the store's timeout.
    fn exchange(&self, uri: &Uri, key: String, call: ScheduleCall, lease: bool) {
        if let Some(authority) = Authority::of(uri) {
            self.send(authority, key, call, lease);
        }
    }

    fn send(&self, authority: Authority, key: String, call: ScheduleCall, lease: bool) {
        let Some(store) = self.shared.fleet.clone() else {
            return;
        };
        // A throttling answer or a hold engages the server fleet-wide, for as long as a lane
        // stays engaged here after it.
        let mark = (call.throttled.is_some() || call.hold_ms > 0)
            .then(|| FORGET_AFTER.saturating_add(Duration::from_millis(call.hold_ms)));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let error = StoreError::new("no tokio runtime to reach the store from");
            self.answered(&authority, Err(error), lease);
            return;
        };
        store.ensure_task();
        let throttle = self.clone();
        runtime.spawn(async move {
            let result = store.schedule(&key, call).await;
            let ok = result.is_ok();
            throttle.answered(&authority, result, lease);
            if let Some(engaged_for) = mark.filter(|_| ok) {
                let _ = store.engaged(Some((&authority.key(), engaged_for))).await;
            }
        });
    }

    /// The store answered an exchange for `authority` (or failed to).
    fn answered(
        &self,
        authority: &Authority,
        result: Result<ScheduleReply, StoreError>,
        lease: bool,
    ) {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(lane) = find(&mut state, authority) else {
            return;
        };
        let Some(fleet) = lane.fleet.as_mut() else {
            return;
        };
        match result {
            Ok(reply) => {
                if let Some(until) = fleet.answered(now, &reply, lease) {
                    lane.hold(now, until);
                }
            }
            Err(_) => fleet.failed(now, lease),
        }
        lane.wake_first(now);
    }

    fn shed_at(&self, waiter: &Waiter) -> Option<Instant> {
        let limit = self.shared.config.limits.shed_after?;
        Some(later(waiter.entered, limit))
    }

    /// Learns from a response of `uri`'s authority to an attempt sent at `sent` (known when the
    /// throttle admitted it). Reads no header and no clock for a response that is neither a 429 nor
    /// a 503 while no authority is throttled: that check is inlined where the response is judged.
    #[inline]
    pub(crate) fn observe(
        &self,
        uri: &Uri,
        status: StatusCode,
        headers: &HeaderMap,
        sent: Option<Instant>,
        max: Duration,
    ) {
        let code = status.as_u16();
        if code != 429 && !self.is_engaged() {
            // An outage, not a limit: a 503 that asks for no particular wait.
            if code != 503 || !headers.contains_key(header::RETRY_AFTER) {
                return;
            }
        }
        self.learn(uri, status, headers, sent, max);
    }

    fn learn(
        &self,
        uri: &Uri,
        status: StatusCode,
        headers: &HeaderMap,
        sent: Option<Instant>,
        max: Duration,
    ) {
        // `observe` has let go of every response that says nothing about a rate.
        let code = status.as_u16();
        let maybe_throttling = code == 429 || code == 503;
        let now = Instant::now();
        // The wall clock only for a date with no `Date` header to measure it from.
        let asked = maybe_throttling
            .then(|| retry_after_with(headers, SystemTime::now))
            .flatten();
        let quota = rate_limit_with(headers, SystemTime::now);
        let spent = quota.is_some_and(|q| q.is_exhausted());
        // `Retry-After: 0` says the server needs no pause (a load balancer's hint to try again at
        // once): it is not asking for a lower rate.
        let immediate = asked.is_some_and(|delay| delay.is_zero());
        let throttling = !immediate && (code == 429 || (code == 503 && asked.is_some()));
        let mut state = self.lock();
        let create = throttling || spent || self.shared.config.from_first_request;
        let known = self.shared.engaged.load(Ordering::Acquire);
        let Some(lane) = self.lane_for(&mut state, uri, now, create, throttling) else {
            return;
        };
        // The answer that engages the throttle starts slow start; it is no overshoot of a rate.
        let fresh = self.shared.engaged.load(Ordering::Acquire) > known;
        // The rate is judged first: a hold stops the rate's clock from now on.
        if throttling && !fresh {
            let backlogged = !lane.is_idle();
            lane.control.throttled(now, sent, lane.spacing, backlogged);
        } else if !throttling && !spent {
            lane.control.admitted(now);
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
        let report = lane.fleet.as_mut().and_then(|fleet| {
            let hold = match quota {
                Some(q) if asked.is_none() && q.remaining == 0 => q.reset,
                _ => asked,
            };
            let hold = hold.map(|delay| delay.min(max)).filter(|d| !d.is_zero());
            let exact = quota.and_then(|q| Some((q.remaining, q.reset?)).filter(|(r, _)| *r > 0));
            let call = fleet.report(
                now,
                throttling.then_some(sent.filter(|_| !fresh)),
                hold,
                exact,
            )?;
            Some((fleet.key.clone(), call))
        });
        drop(state);
        if let Some((key, call)) = report {
            self.exchange(uri, key, call, false);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The lane of `uri`'s authority; made when `create` (then counted as engaged). A quiet lane is
    /// forgotten here.
    fn lane<'a>(
        &self,
        state: &'a mut State,
        uri: &Uri,
        now: Instant,
        create: bool,
    ) -> Option<&'a mut Lane> {
        self.lane_for(state, uri, now, create, false)
    }

    /// [`lane`](Self::lane), `signal` when a throttling answer makes it.
    fn lane_for<'a>(
        &self,
        state: &'a mut State,
        uri: &Uri,
        now: Instant,
        create: bool,
        signal: bool,
    ) -> Option<&'a mut Lane> {
        self.shared.lane_for(state, uri, now, create, signal)
    }
}

impl Shared {
    /// [`lane`](Throttle::lane), `signal` when a throttling answer makes it.
    fn lane_for<'a>(
        &self,
        state: &'a mut State,
        uri: &Uri,
        now: Instant,
        create: bool,
        signal: bool,
    ) -> Option<&'a mut Lane> {
        let lanes = &mut state.lanes;
        let found = lanes.iter().position(|(authority, _)| authority.is(uri));
        if let Some(at) = found {
            let lane = &lanes[at].1;
            let quiet = lane.is_idle()
                && now.saturating_duration_since(lane.last_signal) >= FORGET_AFTER
                && lane.not_before.is_none_or(|until| until <= now);
            if !quiet {
                return Some(&mut lanes[at].1);
            }
            lanes.swap_remove(at);
            self.engaged.fetch_sub(1, Ordering::AcqRel);
        }
        if !create {
            return None;
        }
        let authority = Authority::of(uri)?;
        if lanes.len() >= MAX_LANES {
            let quietest = (0..lanes.len())
                .filter(|&i| lanes[i].1.is_idle())
                .min_by_key(|&i| lanes[i].1.last_signal)
                .unwrap_or(0);
            lanes.swap_remove(quietest);
            self.engaged.fetch_sub(1, Ordering::AcqRel);
        }
        let mut lane = Lane::new(now, signal);
        if let Some(store) = &self.fleet {
            let key = store.schedule_key(&authority.key());
            lane.fleet = Some(FleetLane::new(key, store.timeout(), now));
        }
        lanes.push((authority, lane));
        self.engaged.fetch_add(1, Ordering::AcqRel);
        lanes.last_mut().map(|(_, lane)| lane)
    }
}

impl Engage for Shared {
    /// Engages the servers the fleet has engaged, so that this process paces them too, even before
    /// its own first throttling answer from them.
    fn engage(&self, authorities: &[String]) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for authority in authorities {
            let Ok(uri) = authority.parse::<Uri>() else {
                continue;
            };
            if let Some(lane) = self.lane_for(&mut state, &uri, now, true, false) {
                // Engaged by the fleet: kept while the fleet keeps it engaged.
                lane.last_signal = lane.last_signal.max(now);
            }
        }
    }
}

fn find<'a>(state: &'a mut State, authority: &Authority) -> Option<&'a mut Lane> {
    state
        .lanes
        .iter_mut()
        .find(|(a, _)| a.same(authority))
        .map(|(_, lane)| lane)
}

/// `now + delay` (at most a year from now, so that it always fits the clock).
pub(crate) fn later(now: Instant, delay: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
    now.checked_add(delay.min(FAR)).unwrap_or(now)
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut state = self.throttle.lock();
        if let Some(lane) = find(&mut state, &self.authority) {
            lane.cancel(self.id, now);
        }
    }
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = self.shared.config;
        f.debug_struct("Throttle")
            .field("shed_after", &config.limits.shed_after)
            .field("max_queue", &config.limits.max_queue)
            .field("from_first_request", &config.from_first_request)
            .field("authorities", &self.shared.engaged.load(Ordering::Relaxed))
            .field("store", &self.shared.store)
            .finish()
    }
}
