//! One race of hedged attempts: the attempts in flight together and when the next hedge may
//! leave. What a call does with it is in [`racing`](super::racing).

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{sleep_until, Instant, Sleep};

/// The attempts of one race, in flight together.
pub(super) struct Race<F> {
    pub(super) running: Vec<Running<F>>,
    /// When the next hedge may leave; `None` while none may (the cap reached, or `open` false).
    pub(super) next: Option<Pin<Box<Sleep>>>,
    /// Whether more hedges may leave: not once the attempt limit or the service's readiness said
    /// no, nor while the route's delay is not known yet (a spent budget only defers the next).
    pub(super) open: bool,
    /// The route whose latencies the race adds to.
    pub(super) route: u64,
    /// The race's first attempt and when it left, until its latency is recorded: a race adds one
    /// latency to its route, its first attempt's (see `Call::measured`).
    pub(super) first: Option<(u32, Instant)>,
    /// How long after an attempt the next hedge leaves.
    pub(super) delay: Duration,
}

/// One attempt in flight: its number, its future.
pub(super) struct Running<F> {
    pub(super) attempt: u32,
    pub(super) future: Pin<Box<F>>,
}

impl<F> Race<F> {
    /// Attempts still in flight.
    pub(super) fn in_flight(&self) -> usize {
        self.running.len()
    }

    /// Drops every attempt in flight (their time ran out together).
    pub(super) fn abandon(&mut self) {
        self.running.clear();
        self.close();
    }

    /// When a hedge that could not leave (its body still being sent, the throttle's turn not
    /// come) asks again: a delay later, and at least a millisecond, so that a zero delay does not
    /// poll the race round and round.
    pub(super) fn retry_in(&self) -> Duration {
        self.delay.max(Duration::from_millis(1))
    }

    /// When a hedge the budget refused asks again: a quarter of the delay later, at least a
    /// millisecond. The calls that follow refill the budget while the attempt runs, and a hedge
    /// a little late cuts a long tail almost as much as one on time.
    pub(super) fn budget_retry_in(&self) -> Duration {
        (self.delay / 4).max(Duration::from_millis(1))
    }

    /// No more hedges.
    pub(super) fn close(&mut self) {
        self.open = false;
        self.next = None;
    }

    /// An outcome worth a retry came while others run: a hedge may leave at once (gRPC's A6).
    pub(super) fn hedge_now(&mut self) {
        if self.open {
            self.next = Some(Box::pin(sleep_until(Instant::now())));
        }
    }
}
