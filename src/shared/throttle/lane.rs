//! One scope's lane: its rate, the time the server gave, and the line of requests waiting for
//! their turn, in arrival order.

use std::collections::VecDeque;
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

use super::control::Control;
use super::fleet::{FleetLane, Next};

/// The resolution of tokio's timers: a turn this close is taken at once.
const TICK: Duration = Duration::from_millis(1);

/// Where a call stands in line: when it first met the throttle, then a tie-breaking sequence number.
/// A retry keeps its call's place, so the request that was told to wait is not queued behind those
/// that arrived during its wait.
pub(crate) type Place = (Instant, u64);

/// What an attempt asking for its turn is told.
#[derive(Debug)]
pub(crate) enum Turn {
    /// Leave now.
    Go,
    /// Not yet: ask again at this instant at the latest (or when woken).
    Until(Instant),
    /// Refused, and why.
    Refused(Refusal),
}

/// Why a request was not given a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its turn would come after the call's deadline.
    Deadline,
    /// It would wait longer than shed mode allows, or the line is full; try again after this long.
    Shed(Duration),
}

struct Waiting {
    id: u64,
    place: Place,
    /// Not before this (the attempt's own wait).
    earliest: Instant,
    waker: Option<Waker>,
}

impl Waiting {
    /// Whether it stands in line at `now`: its own wait ends within a timer tick. A retry whose
    /// wait ends with the server's hold keeps its turn, though its timer fires a little after
    /// those of the requests that waited for the hold.
    fn is_due(&self, now: Instant) -> bool {
        self.earliest.checked_sub(TICK).is_none_or(|due| due <= now)
    }
}

/// The state of one throttled scope.
pub(crate) struct Lane {
    pub(crate) control: Control,
    /// No attempt leaves before this: the latest time the server gave.
    pub(crate) not_before: Option<Instant>,
    /// When the next request may leave at the current rate.
    next_free: Instant,
    line: VecDeque<Waiting>,
    /// The actual gap between the last two departures, and the last departure.
    pub(crate) spacing: Option<Duration>,
    departed: Option<Instant>,
    /// The last throttling answer, or when the lane was made.
    pub(crate) last_signal: Instant,
    /// The rate's growth is accounted for up to here: counted while the rate held requests back,
    /// paused while it held nobody back (see [`Lane::unused`]).
    accounted: Instant,
    /// The fleet's schedule, when the throttle shares one through a store.
    pub(crate) fleet: Option<FleetLane>,
}

/// The bounds a lane applies, from the throttle's configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    pub(crate) max_queue: usize,
    pub(crate) shed_after: Option<Duration>,
}

impl Lane {
    /// A lane engaged at `now`; `throttled` when a throttling answer engaged it, so the next request
    /// waits one interval instead of following the one just refused.
    pub(crate) fn new(now: Instant, throttled: bool) -> Self {
        let control = Control::new(now);
        let next_free = match throttled {
            true => now.checked_add(control.interval(now)).unwrap_or(now),
            false => now,
        };
        Self {
            control,
            not_before: None,
            next_free,
            line: VecDeque::new(),
            spacing: None,
            departed: None,
            last_signal: now,
            accounted: now,
            fleet: None,
        }
    }

    /// Engaged by a throttling answer at `now`, while the scope's requests were sent at `sending`
    /// per second (when measured): the rate starts near it, and the next request waits one
    /// interval of it.
    pub(crate) fn engage(&mut self, now: Instant, sending: Option<f64>) {
        self.control.engage(now, sending);
        self.next_free = now.checked_add(self.control.interval(now)).unwrap_or(now);
    }

    /// The rate requests leave at now: the fleet's while its schedule is followed, else this
    /// process's own.
    pub(crate) fn rate(&self, now: Instant) -> f64 {
        match &self.fleet {
            Some(fleet) if fleet.is_online() && fleet.has_answered() => fleet.rate(),
            _ => self.control.rate(now),
        }
    }

    /// The rate as of `now`, the time nobody waited in line accounted for.
    pub(crate) fn settled_rate(&mut self, now: Instant) -> f64 {
        self.unused(now);
        self.rate(now)
    }

    fn interval(&self, now: Instant) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate(now))
    }

    /// Requests in line.
    pub(crate) fn waiting(&self) -> usize {
        self.line.len()
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.line.is_empty()
    }

    /// Whether a server-given time holds the lane at `now`.
    pub(crate) fn is_held(&self, now: Instant) -> bool {
        self.not_before.is_some_and(|until| until > now)
    }

    /// The earliest instant the next request may leave, and whether a lease from the fleet is
    /// awaited (the slot is then `now` for estimates, and nobody leaves until the lease comes).
    fn slot(&mut self, now: Instant) -> (Instant, bool) {
        let held = self.not_before.filter(|until| *until > now);
        let (slot, pending) = match &mut self.fleet {
            Some(fleet) if fleet.is_online() => {
                fleet.prune(now, held);
                match fleet.next(now) {
                    Next::Slot(slot) | Next::Confirm(slot) => (slot, false),
                    Next::Lease => (now, true),
                }
            }
            // A turn opens a timer tick early: timers fire on whole ticks, never before their
            // time, so a wait for the turn itself would end up to a tick late, and every late
            // departure would push the next turn back (a rate near 1,000 r/s halved, any rate
            // below what it says). The next turn counts from the turn, so the rate holds.
            _ => (
                now.max(self.next_free.checked_sub(TICK).unwrap_or(self.next_free)),
                false,
            ),
        };
        (
            self.not_before.map_or(slot, |server| slot.max(server)),
            pending,
        )
    }

    /// How long to wait for a lease before looking again (it wakes the line when it comes).
    fn patience(&self, now: Instant) -> Instant {
        let wait = self
            .fleet
            .as_ref()
            .map_or(Duration::ZERO, FleetLane::patience);
        later(now, wait)
    }

    /// Holds the lane from `now` until at least `until`.
    pub(crate) fn hold(&mut self, now: Instant, until: Instant) {
        self.unused(now);
        let held = self.not_before.filter(|held| *held > now).unwrap_or(now);
        if until > held {
            self.control.pause(held, until);
            self.not_before = Some(until);
            // The server said when to come back: the first request then leaves at that time, not
            // an interval of the rate after it (a scope engaged in slow start would add 500 ms).
            self.next_free = self.next_free.min(until);
        }
    }

    /// A request in `place`, whose own wait ends at `earliest`, asks to leave at `now`: it leaves, or
    /// joins the line as `id`, or is refused at once.
    pub(crate) fn enter(
        &mut self,
        id: u64,
        place: Place,
        earliest: Instant,
        now: Instant,
        deadline: Option<Instant>,
        bounds: Bounds,
    ) -> Turn {
        self.unused(now);
        let (slot, pending) = self.slot(now);
        // Reservations whose time has not come (a retry still waiting out its own wait) hold
        // their place without holding anyone back.
        let ahead = self
            .line
            .iter()
            .filter(|w| w.place < place && w.is_due(now))
            .count();
        if ahead == 0 && earliest <= now && slot <= now && !pending {
            self.leave(now);
            return Turn::Go;
        }
        let interval = self.interval(now);
        let estimate = slot
            .max(earliest)
            .checked_add(interval.saturating_mul(u32::try_from(ahead).unwrap_or(u32::MAX)));
        let wait = estimate.map_or(Duration::MAX, |at| at.saturating_duration_since(now));
        // In slow start the rate doubles every 500 ms: only the server's time is a sure estimate.
        let sure = match self.control.is_starting() {
            true => Some(slot.max(earliest)),
            false => estimate,
        };
        let sure_wait = sure.map_or(Duration::MAX, |at| at.saturating_duration_since(now));
        if deadline.is_some_and(|deadline| sure.is_none_or(|at| at >= deadline)) {
            return Turn::Refused(Refusal::Deadline);
        }
        // The bound is on requests waiting now: retries whose own wait has not ended keep their
        // place without taking a new arrival's (they are at most as many again: see `reserve`).
        let waiting = self.line.iter().filter(|w| w.is_due(now)).count();
        if bounds.shed_after.is_some_and(|limit| sure_wait > limit) || waiting >= bounds.max_queue {
            return Turn::Refused(Refusal::Shed(wait));
        }
        self.join(id, place, earliest);
        let until = estimate.unwrap_or(now).max(earliest);
        match pending {
            true => Turn::Until(until.max(self.patience(now))),
            false => Turn::Until(until),
        }
    }

    /// Keeps `place` in line as `id` for a retry that will ask at `earliest`, so that those who
    /// arrive during its wait do not take its turn when the wait ends. `false` when the line is
    /// full.
    pub(crate) fn reserve(
        &mut self,
        id: u64,
        place: Place,
        earliest: Instant,
        bounds: Bounds,
    ) -> bool {
        if self.line.len() >= bounds.max_queue {
            return false;
        }
        self.join(id, place, earliest);
        true
    }

    /// Puts `id` in line at `place`, not to leave before `earliest`.
    fn join(&mut self, id: u64, place: Place, earliest: Instant) {
        let at = self.line.partition_point(|w| w.place < place);
        let waiting = Waiting {
            id,
            place,
            earliest,
            waker: None,
        };
        self.line.insert(at, waiting);
    }

    /// Request `id`, in line, asks again at `now`.
    pub(crate) fn poll(&mut self, id: u64, now: Instant, waker: &Waker) -> Turn {
        let Some(at) = self.line.iter().position(|w| w.id == id) else {
            return Turn::Go; // no longer in line (the lane was forgotten): nothing holds it
        };
        let me = &self.line[at];
        if me.earliest > now {
            let earliest = me.earliest;
            self.park(at, waker);
            return Turn::Until(earliest);
        }
        let first = self.line.iter().position(|w| w.is_due(now));
        let (slot, pending) = self.slot(now);
        if first == Some(at) && slot <= now && !pending {
            self.line.remove(at);
            self.leave(now);
            self.wake_first(now);
            return Turn::Go;
        }
        // Behind others (woken when they leave), or first until the slot: either way, look again
        // at the estimate at the latest, so that no lost wake-up can hang a request.
        let ahead = self.line.iter().take(at).filter(|w| w.is_due(now)).count();
        let interval = self.interval(now);
        let estimate = slot
            .checked_add(interval.saturating_mul(u32::try_from(ahead).unwrap_or(u32::MAX)))
            .unwrap_or(slot);
        self.park(at, waker);
        match pending {
            true => Turn::Until(estimate.max(self.patience(now))),
            false => Turn::Until(estimate),
        }
    }

    /// Request `id` gives up its place (its call ended or was dropped).
    pub(crate) fn cancel(&mut self, id: u64, now: Instant) {
        if let Some(at) = self.line.iter().position(|w| w.id == id) {
            self.line.remove(at);
            self.accounted = self.accounted.max(now);
            self.wake_first(now);
        }
    }

    /// Accounts for the time since the last departure if the rate held nobody back: nobody is in
    /// line and the next request could leave now. The rate did not limit the sends then, so it
    /// does not grow for that time (as TCP's window does not grow while the application sends
    /// less than it allows): a client that goes quiet, or sends below the rate, comes back at the
    /// rate it last used, not at one slow start or probing reached meanwhile. A request that
    /// arrives before its turn was held back since the last departure, and that time counts.
    fn unused(&mut self, now: Instant) {
        let nobody = self.line.iter().all(|w| w.earliest > now);
        if nobody && self.next_free <= now {
            self.control.pause(self.accounted, now);
            self.accounted = self.accounted.max(now);
        }
    }

    /// How long until request `id`'s turn, as estimated now, for a shed error.
    pub(crate) fn estimate(&mut self, id: u64, now: Instant) -> Duration {
        let ahead = self.line.iter().take_while(|w| w.id != id).count();
        let wait = self
            .interval(now)
            .saturating_mul(u32::try_from(ahead).unwrap_or(u32::MAX));
        self.slot(now)
            .0
            .saturating_duration_since(now)
            .saturating_add(wait)
    }

    /// Wakes the first request that may leave, e.g. after the rate went up or the line moved.
    pub(crate) fn wake_first(&mut self, now: Instant) {
        if let Some(first) = self.line.iter_mut().find(|w| w.is_due(now))
            && let Some(waker) = first.waker.take()
        {
            waker.wake();
        }
    }

    fn park(&mut self, at: usize, waker: &Waker) {
        let slot = &mut self.line[at].waker;
        match slot {
            Some(old) if old.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    fn leave(&mut self, now: Instant) {
        if let Some(fleet) = &mut self.fleet
            && fleet.is_online()
        {
            fleet.leave(now);
        }
        let interval = self.control.interval(now);
        self.spacing = self
            .departed
            .map(|last| now.saturating_duration_since(last));
        self.departed = Some(now);
        // The request waited in line until now, if at all: that time counted.
        self.accounted = self.accounted.max(now);
        // From the later of the turn and the actual departure: a timer that fires late never makes
        // the next one early, and one let go up to a tick early keeps the rate on average.
        self.next_free = self.next_free.max(now).checked_add(interval).unwrap_or(now);
    }
}

/// `now + delay` (at most a year from now, so that it always fits the clock).
pub(crate) fn later(now: Instant, delay: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
    now.checked_add(delay.min(FAR)).unwrap_or(now)
}
