//! The throttle: sends each quota scope at the rate its server admits, learned from its answers,
//! for first attempts and retries alike.
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
//! # Scopes: what an answer is about
//!
//! Servers limit per API key far more often than per host, so the throttle keeps its state per
//! **scope**: the server (scheme, host and port of the URI each attempt is actually sent to, after
//! [`before_retry`](crate::RetryPolicy::before_retry); the `Host` header for a path-only URI; the
//! wrapped service itself, a tonic channel say, when neither names one) and the request's
//! credential: `Authorization`, `x-api-key`, `api-key`, `x-goog-api-key` and
//! `Ocp-Apim-Subscription-Key`, hashed and never kept in clear. One key's 429s never pace or hold
//! another key's requests, and processes that share a key share its scope in a fleet.
//! [`Throttle::scope_by`] narrows scopes further: per model, per endpoint, per tenant header.
//!
//! What each answer does:
//!
//! | answer | the call | its route (scope, method, path) | its scope |
//! |---|---|---|---|
//! | 429 (gRPC: `RESOURCE_EXHAUSTED`) | retried after its backoff or `Retry-After` | – | engaged: paced from then on, the rate cut, never below what the scope was measured to admit; `Retry-After` holds it |
//! | bare 429s under 5% of the scope's answers | the same | – | counted, not cut: a quota of the refused requests' own |
//! | 503 with `Retry-After`, gRPC pushback | waits what it was told | held when another of its calls was told to wait while this one's time runs: until the latest answer's time (calls told nothing wait for it; one call's answer holds nothing) | nothing: an overloaded replica or route, not a rate |
//! | `Retry-After: 0`, a zero pushback | retried at once | nothing | nothing |
//! | rate-limit headers, quota spent | waits for the reset | – | held until the reset |
//! | rate-limit headers, quota left (scope engaged) | – | – | paced at remaining over reset, exactly |
//! | anything else (scope engaged) | – | – | counted as admitted |
//!
//! A route's hold is the process's own (a store shares scopes, not routes); at most 4096 routes
//! are watched at once (past that a new route goes unwatched, each call still waiting its own
//! time), and each is forgotten once its time has passed.
//!
//! # The rate law
//!
//! A scope engaged by a throttling answer starts 10% above the rate the throttle's calls were
//! being sent at, or slow-starts from 2 r/s when that was not measured; each later throttling
//! answer cuts the rate, never below what the scope was measured to admit, and probing finds
//! out whether the server admits more. The [law](law) states it, phases and constants, once: a
//! process and a fleet's store apply the same one.
//!
//! # When it engages
//!
//! By default a scope is throttled from its first throttling answer until it has been quiet (no
//! throttling answer, nobody waiting, no hold) for 60 s, whether or not it is looked up again.
//! While no scope is throttled and no route held, calls pay two atomic loads and one relaxed atomic add: no lock, no
//! lookup, no allocation. Once one is, a call finds its scope in a map split over 16 locks, at
//! the same cost among a thousand scopes as among one. At most 4096 scopes are kept; past that
//! the quietest scope without a hold or a line is forgotten, and when every one has either, a new
//! scope goes unpaced (each of its calls still waits what its own answers ask).
//! [`Throttle::from_first_request`] engages each scope from its first request instead.
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
//! The line of each scope holds at most 1024 requests ([`Throttle::max_queue`]); when it is full,
//! a new request is shed (in either mode), so memory stays bounded and callers learn at once that
//! the server is saturated.
//!
//! # Fleets
//!
//! Processes that share a quota (one API key, many workers) share one throttle through a
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
//! Per scope, the store keeps one schedule, GCRA-style, on its own clock: the next free send
//! time, the hold the server gave, and the [rate law](law), applied once for the fleet to the
//! answers every process reports. So:
//!
//! - the fleet sends at one rate: a throttling answer cuts it once per overshoot, not once per
//!   process (answers to slots issued before the cut are that same overshoot);
//! - a `Retry-After` holds the whole fleet, and after it the fleet's sends follow one another at
//!   the rate instead of leaving together;
//! - a scope engaged by one process is engaged by every process within 100 ms (the store's
//!   background task reads which are). Scopes are named by server and a digest of the credential,
//!   the same in every process.
//!
//! A process leases its next send slots (about 100 ms of them) and uses each at its time; when it
//! has not heard from the store in the 20 ms before a slot, it reads the schedule first, so that a
//! slot leased before another process's 429 is not used into the hold it brought. A slot the process
//! wakes too late for (more than 5% of an interval, or 5 ms) is left, since a late send would crowd
//! the next process's slot, and the time it stood for is told to the store, so that the fleet's
//! rate, like a process's, grows only while it holds sends back. Requests wait for a lease at most
//! the store's timeout. While the store fails or is slow, each process paces on its own state,
//! learned from its own answers all along (one warning per outage), and follows the fleet's
//! schedule again once the store answers. Not shared: the measure of the rate a scope was sent at
//! when it engaged (where the requests leave), each process's line and its shed decisions.
//!
//! # The retry budget
//!
//! A retry of a throttling answer whose scope the throttle paces costs the
//! [retry budget](crate::budget) nothing: the throttle already keeps the load at what the server
//! admits, and the budget's job is to stop retries from multiplying the load. Every other retry
//! (a throttling one without a throttle, or one the throttle did not engage for) draws from the
//! budget.

mod authority;
pub(crate) mod control;
mod exchange;
mod fleet;
mod handle;
mod lane;
mod lanes;
mod routes;
mod scope;
mod sends;
mod shed;
mod store_clock;

pub use crate::shared::law;
pub use handle::Throttle;
pub(crate) use handle::{Entered, Sent, Waiter};
pub(crate) use lane::{later, Place, Refusal, Turn};
pub use scope::Target;
pub use shed::Shed;
