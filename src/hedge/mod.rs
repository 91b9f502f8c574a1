//! Hedged requests: a copy of an attempt sent while the attempt is still in flight, so that one
//! slow replica, one lost packet or one long pause costs the caller a hedging delay instead of
//! its whole length.
//!
//! ```
//! use std::time::Duration;
//! use tower_http_retry::hedge::Hedge;
//! use tower_http_retry::RetryPolicy;
//!
//! // After the 95th percentile of the route's recent latencies (the default), or after a fixed
//! // delay; at most 2 attempts in flight, at most 5% more requests than calls.
//! let learned = RetryPolicy::default().hedge(Hedge::default());
//! let fixed = RetryPolicy::default().hedge(Hedge::after(Duration::from_millis(10)).budget(0.02));
//! # let _ = (learned, fixed);
//! ```
//!
//! What is hedged, and how ("The Tail at Scale", Dean and Barroso, 2013; gRPC's A6):
//!
//! - **Only requests safe to send twice**: idempotent methods, or a request that carries an
//!   idempotency key; and only when the body can be copied at that moment (buffered, empty, or a
//!   [`ReplayBody`](crate::body::ReplayBody) whose recording is complete). Anything else is sent
//!   once and retried as usual.
//! - **The delay**: fixed ([`Hedge::after`]), or a percentile of the route's recent attempt
//!   latencies ([`Hedge::at_percentile`], p95 by default), kept per route (server, path) in a
//!   DDSketch over the last thousand or so attempts; until a route has 20 measured, it is not hedged.
//!   The attempt the hedges copy is the one measured, won or lost: beaten, it counts the time it
//!   had run; so the slow attempts that hedges cut short still count, and about 5% of calls wait
//!   past the p95 (not more, as when the hedges that won are measured instead).
//! - **The cap**: at most [`max_in_flight`](Hedge::max_in_flight) attempts at once (2 by default,
//!   A6 allows 5); each hedge is an attempt, counted by the policy's attempt limit.
//! - **The budget**: hedges are at most a fraction of calls ([`budget`](Hedge::budget), 5% by
//!   default), apart from the retry budget. A call that finds it spent waits in line while its
//!   attempt runs: as the calls that follow refill it, it serves the calls it refused oldest
//!   first (the longest-running attempts are the likeliest to be in the tail), each woken by the
//!   deposit that pays for its hedge (a call is kept one hedge, so one that stops asking, its
//!   future no longer polled, holds up that hedge, not the line). With a budget of 0 no call is
//!   hedged.
//! - **The throttle**: a hedge asks for its turn like any attempt; one that would have to wait (a
//!   scope on hold, a paced scope whose turn has not come, a held route) is not sent, and asks
//!   again a delay later, its place in the budget's line given up meanwhile.
//! - **The race**: the first outcome the classifier calls final wins; the others are dropped at
//!   once (hyper resets an HTTP/2 stream, closes an HTTP/1.1 connection). An outcome worth a retry
//!   ends nothing while another attempt is in flight; when none is, the retry follows as usual.
//! - **Reported**: [`RetryHistory::hedges`](crate::RetryHistory::hedges) and
//!   [`won_by`](crate::RetryHistory::won_by), and the metrics' counter
//!   [`HEDGES`](crate::metrics::HEDGES).
//!
//! Per call, [`CallSettings::no_hedging`](crate::CallSettings::no_hedging) and
//! [`CallSettings::hedge_after`](crate::CallSettings::hedge_after) turn it off or fix its delay.
//! A call whose responses are read within their attempts
//! ([`buffer_responses`](crate::RetryPolicy::buffer_responses)) is not hedged. gRPC's A6
//! `hedgingPolicy` maps to `RetryPolicy::grpc_hedging`
//! (feature `grpc`).

mod budget;
mod latencies;
mod line;
mod policy;

pub(crate) use line::Place;
pub use policy::Hedge;
