//! One race of hedged attempts: the attempts in flight together and when the next hedge may
//! leave. What a call does with it is in [`racing`](super::racing).

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{sleep_until, Instant, Sleep};

use crate::hedge::Place;
use crate::shared::throttle::later;

/// The attempts of one race, in flight together.
pub(super) struct Race<F> {
    pub(super) running: Vec<Running<F>>,
    /// When the next hedge may leave; `None` while none may (the cap reached, `open` false, or
    /// in the budget's line).
    pub(super) next: Option<Pin<Box<Sleep>>>,
    /// The race's place in the hedge budget's line, since the spent budget refused its hedge: it
    /// is woken when the budget serves it, and leaves the line when the race ends.
    pub(super) in_line: Option<Place>,
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

    /// A hedge could not leave (its body still being sent, the throttle's turn not come): it asks
    /// again a delay later, and at least a millisecond, so that a zero delay does not poll the
    /// race round and round; meanwhile it gives up its place in the budget's line, which it
    /// would hold up.
    pub(super) fn wait(&mut self, now: Instant) {
        let again = self.delay.max(Duration::from_millis(1));
        self.next = Some(Box::pin(sleep_until(later(now, again))));
        self.in_line = None;
    }

    /// No more hedges.
    pub(super) fn close(&mut self) {
        self.open = false;
        self.next = None;
        self.in_line = None;
    }

    /// An outcome worth a retry came while others run: a hedge may leave at once (gRPC's A6).
    pub(super) fn hedge_now(&mut self) {
        if self.open {
            self.next = Some(Box::pin(sleep_until(Instant::now())));
        }
    }
}
