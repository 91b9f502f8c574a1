//! A lane's part in a fleet's schedule: send slots leased from the store, and what is reported to
//! it. While the store answers, a request leaves on a leased slot; while it does not, on the
//! process's own pacing, which learns from every answer all along.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::shared::law::START_RATE;
use crate::shared::store::{Refused, ScheduleCall, ScheduleReply, SlotSent};

use super::store_clock::StoreClock;

/// How long a lease lasts at the fleet's rate: a process leases its next sends this far ahead, and
/// no further (one slot at least). A lease's slots are spaced at one rate, so in slow start
/// (15% more per 100 ms) a lease of two slots at 10 r/s made the fleet's rate jump 30% from one
/// lease to the next: it overshot a limit by that much, where a process overshoots by one
/// request's growth.
const LEASE_SPAN: f64 = 0.1;
/// After a failed exchange, the process's own state decides for this long before trying again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(100);
/// Rate-limit headers come with every answer: the fleet hears of them this often at most.
const QUOTA_EVERY: Duration = Duration::from_millis(100);
/// A slot is confirmed this long before it is used at least (a read of the fleet's hold and
/// cuts), unless the store was heard from since: a slot leased before another process's 429 is
/// not used into the hold that answer brought. Three round trips when they are longer, so that the
/// answer comes before the slot, not after it (a slot used late crowds the next sender's).
const CONFIRM: Duration = Duration::from_millis(20);
/// The resolution of tokio's timers: a process woken for a slot is often this late, and that is
/// no reason to leave the slot.
const TIMER_TICK: Duration = Duration::from_millis(1);
/// Departures remembered, to find the slot an answered request left on.
const DEPARTURES: usize = 64;

/// A slot as the store issued it: when, and when it was issued (µs of the store's clock).
#[derive(Clone, Copy, Debug)]
struct Slot {
    at: f64,
    issued: f64,
    /// The rate it was spaced at from the slot before it in the fleet's schedule (0: unknown).
    rate: f64,
}

/// One lane's link to the fleet's schedule of its authority.
#[derive(Debug)]
pub(crate) struct FleetLane {
    pub(crate) key: String,
    /// Leased slots: on tokio's clock, and on the store's with when it issued them (µs).
    slots: VecDeque<(Instant, Slot)>,
    /// An exchange is under way.
    pub(crate) asking: bool,
    /// Whether the last exchange succeeded; if not, when to try again.
    online: bool,
    retry_at: Instant,
    /// Recent departures on slots: (sent, its slot).
    departed: VecDeque<(Instant, Slot)>,
    /// The fleet's rate at the last exchange.
    rate: f64,
    last_quota: Option<Instant>,
    /// How long a request waits for a lease at most (the store's timeout).
    patience: Duration,
    /// When the store last answered.
    heard: Option<Instant>,
    /// The store's clock against tokio's.
    clock: StoreClock,
    /// When the exchange under way was asked for, and the round trip, smoothed.
    asked_at: Instant,
    round_trip: Duration,
    /// The time the slots dropped too late to use since the last exchange stood for (µs), for
    /// the store to know.
    unused: u64,
    /// Answers admitted since the last exchange, for the fleet's rate admitted.
    admitted: u32,
}

/// A throttling answer, as a process saw it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Throttled {
    /// When the refused request was sent, if the throttle paced it.
    pub(crate) sent: Option<Instant>,
    /// It gave a time to come back.
    pub(crate) held: bool,
    /// Requests were waiting in line.
    pub(crate) backlogged: bool,
    /// The rate this process was sending at, when the answer engaged the scope.
    pub(crate) sending: Option<f64>,
}

/// What a lane's next send waits for.
pub(crate) enum Next {
    /// The slot, confirmed.
    Slot(Instant),
    /// The slot is near and must be confirmed first; until then, this is when to look.
    Confirm(Instant),
    /// A lease.
    Lease,
}

impl FleetLane {
    pub(crate) fn new(key: String, patience: Duration, now: Instant) -> Self {
        Self {
            key,
            slots: VecDeque::new(),
            asking: false,
            online: true,
            retry_at: now,
            departed: VecDeque::new(),
            rate: START_RATE,
            last_quota: None,
            patience,
            heard: None,
            clock: StoreClock::new(now, patience),
            asked_at: now,
            round_trip: Duration::ZERO,
            unused: 0,
            admitted: 0,
        }
    }

    /// An answer that was not a throttling one: told to the store with the next exchange.
    pub(crate) fn admitted(&mut self) {
        self.admitted = self.admitted.saturating_add(1);
    }

    /// Whether sends follow the fleet's schedule now.
    pub(crate) fn is_online(&self) -> bool {
        self.online
    }

    /// Whether the store has answered at least once.
    pub(crate) fn has_answered(&self) -> bool {
        self.heard.is_some()
    }

    /// The fleet's rate at the last exchange.
    pub(crate) fn rate(&self) -> f64 {
        self.rate
    }

    /// Drops slots too late to use (using one late would crowd the next sender's; the time they
    /// stood for is told to the store with the next exchange, so that the fleet's rate does not
    /// grow for it) and slots inside a hold (the store has moved the schedule past it).
    pub(crate) fn prune(&mut self, now: Instant, held: Option<Instant>) {
        // Never under two timer ticks: at 200 r/s and above, 5% of an interval is shorter than a
        // timer can keep to, and every slot would be left (the fleet then sent at a fifth of its
        // rate).
        let grace = Duration::from_secs_f64(0.05 / self.rate.max(1e-3))
            .clamp(TIMER_TICK * 2, Duration::from_millis(5));
        while let Some(&(slot, _)) = self.slots.front() {
            let late = slot.checked_add(grace).is_some_and(|end| end < now);
            let void =
                held.is_some_and(|until| slot.checked_add(grace).is_some_and(|end| end < until));
            if !late && !void {
                break;
            }
            // A slot inside a hold was moved by the store; one woken too late for went unused,
            // and stood for the spacing it was issued at.
            if let Some((_, slot)) = self.slots.pop_front()
                && !void
            {
                let rate = if slot.rate > 0.0 {
                    slot.rate
                } else {
                    self.rate
                };
                let stood = (1e6 / rate.max(1e-3)).min(60e6) as u64;
                self.unused = self.unused.saturating_add(stood);
            }
        }
    }

    /// What the next send waits for.
    pub(crate) fn next(&self, now: Instant) -> Next {
        let Some(&(slot, _)) = self.slots.front() else {
            return Next::Lease;
        };
        let lead = CONFIRM.max(self.round_trip.saturating_mul(3));
        let check = slot.checked_sub(lead).unwrap_or(slot);
        if self.heard.is_some_and(|heard| heard >= check) {
            Next::Slot(slot)
        } else if now < check {
            Next::Confirm(check)
        } else {
            Next::Lease
        }
    }

    /// The wait for a lease, at most.
    pub(crate) fn patience(&self) -> Duration {
        self.patience.saturating_add(Duration::from_millis(1))
    }

    /// A request leaves at `now` on the next slot.
    pub(crate) fn leave(&mut self, now: Instant) {
        if let Some((_, slot)) = self.slots.pop_front() {
            if self.departed.len() >= DEPARTURES {
                self.departed.pop_front();
            }
            self.departed.push_back((now, slot));
        }
    }

    /// The lease to ask for with `waiting` requests in line, if one is due: online, none under
    /// way, fewer slots than waiting requests; offline, when it is time to try the store again.
    pub(crate) fn lease(&mut self, now: Instant, waiting: usize) -> Option<ScheduleCall> {
        if self.asking {
            return None;
        }
        // Offline: a read, to learn whether the store answers again.
        if !self.online {
            if now < self.retry_at {
                return None;
            }
            self.asking = true;
            self.asked_at = now;
            return Some(self.call(0));
        }
        // A slot about to be used is confirmed: a read.
        if matches!(self.next(now), Next::Lease) && !self.slots.is_empty() {
            self.asking = true;
            self.asked_at = now;
            return Some(self.call(0));
        }
        // A lease covers the next sends only: slots held far ahead would be spaced at the rate of
        // when they were leased, and kept from the rest of the fleet.
        if waiting == 0 || !self.slots.is_empty() {
            return None;
        }
        let span = (self.rate * LEASE_SPAN).floor().max(1.0);
        self.asking = true;
        self.asked_at = now;
        Some(self.call((waiting as f64).min(span).max(1.0) as u32))
    }

    /// A lease of `want` slots (none: a read), telling the store of the slots that went unused.
    fn call(&mut self, want: u32) -> ScheduleCall {
        ScheduleCall {
            unused: std::mem::take(&mut self.unused),
            admitted: std::mem::take(&mut self.admitted),
            ..ScheduleCall::lease(want)
        }
    }

    /// A report of a server's answer: a throttling answer, a hold, a quota (sent at most every
    /// [`QUOTA_EVERY`]). `None` when there is nothing to tell.
    pub(crate) fn report(
        &mut self,
        now: Instant,
        throttled: Option<Throttled>,
        hold: Option<Duration>,
        quota: Option<(u64, Duration)>,
    ) -> Option<ScheduleCall> {
        let quota = quota.filter(|_| {
            throttled.is_some()
                || hold.is_some()
                || self
                    .last_quota
                    .is_none_or(|last| now.saturating_duration_since(last) >= QUOTA_EVERY)
        });
        if throttled.is_none() && hold.is_none() && quota.is_none() {
            return None;
        }
        if quota.is_some() {
            self.last_quota = Some(now);
        }
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let throttled = throttled.map(|t| Refused {
            slot: t.sent.and_then(|sent| self.issued(sent)),
            held: t.held,
            backlogged: t.backlogged,
            sending: t.sending.unwrap_or(0.0),
        });
        Some(ScheduleCall {
            want: 0,
            throttled,
            hold_ms: hold.map_or(0, |d| ms(d).max(1)),
            quota: quota.map(|(remaining, reset)| (remaining, ms(reset))),
            unused: std::mem::take(&mut self.unused),
            admitted: std::mem::take(&mut self.admitted),
        })
    }

    /// The slot the request sent at `sent` left on: when it was issued, its time and its rate;
    /// for a request sent on this process's own pacing, `sent` on the store's clock for both
    /// times, and no rate.
    fn issued(&self, sent: Instant) -> Option<SlotSent> {
        if let Some(&(_, slot)) = self.departed.iter().rev().find(|(at, _)| *at == sent) {
            return Some(SlotSent {
                issued: slot.issued,
                at: slot.at,
                rate: slot.rate,
            });
        }
        self.heard?;
        let at = self.clock.store(sent);
        Some(SlotSent {
            issued: at,
            at,
            rate: 0.0,
        })
    }

    /// The store answered at `now`: the slots leased, and the fleet's hold (returned, on tokio's
    /// clock, for the lane to apply).
    pub(crate) fn answered(
        &mut self,
        now: Instant,
        reply: &ScheduleReply,
        lease: bool,
    ) -> Option<Instant> {
        if lease {
            self.asking = false;
            let took = now.saturating_duration_since(self.asked_at);
            self.round_trip = (self.round_trip * 3 + took) / 4;
        }
        self.online = true;
        self.heard = Some(now);
        self.clock.answered(now, reply.now);
        self.rate = reply.rate;
        // Slots issued before a cut were spaced at the rate that overshot.
        self.slots
            .retain(|(_, slot)| slot.issued >= reply.decreased);
        let local = |us: f64| self.clock.local(us);
        for i in 0..reply.granted {
            let at = reply.first + f64::from(i) * reply.interval;
            let gap = if i == 0 { reply.gap } else { reply.interval };
            let slot = Slot {
                at,
                issued: reply.now,
                rate: if gap > 0.0 { 1e6 / gap } else { 0.0 },
            };
            self.slots.push_back((local(at), slot));
        }
        (reply.hold > reply.now).then(|| local(reply.hold))
    }

    /// The exchange failed or timed out: the process's own state decides for a while.
    pub(crate) fn failed(&mut self, now: Instant, lease: bool) {
        if lease {
            self.asking = false;
        }
        self.online = false;
        self.slots.clear();
        self.retry_at = now.checked_add(RETRY_AFTER_FAILURE).unwrap_or(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(now: f64, first: f64, granted: u32) -> ScheduleReply {
        ScheduleReply {
            now,
            first,
            interval: 100_000.0,
            granted,
            hold: 0.0,
            rate: 10.0,
            gap: 100_000.0,
            decreased: -1.0,
        }
    }

    #[test]
    fn slots_woken_too_late_for_are_reported_unused_once() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut fleet = FleetLane::new("k".into(), ms(50), t0);
        assert!(fleet.lease(t0, 3).is_some());
        fleet.answered(t0, &reply(0.0, 0.0, 3), true);
        // Awake at 203 ms: the slots at 0 and 100 ms are past their 5 ms grace, the one at 200 ms
        // is not.
        fleet.prune(t0 + ms(203), None);
        assert_eq!(fleet.slots.len(), 1);
        fleet.leave(t0 + ms(203));
        let call = fleet.lease(t0 + ms(203), 1).expect("a lease");
        // Two slots of 100 ms.
        assert_eq!((call.want, call.unused), (1, 200_000));
        fleet.answered(t0 + ms(204), &reply(204_000.0, 300_000.0, 1), true);
        // Slots inside a hold were moved by the store, not left unused; nor is anything told twice.
        fleet.prune(t0 + ms(260), Some(t0 + ms(2000)));
        let call = fleet.lease(t0 + ms(260), 1).expect("a lease");
        assert_eq!(call.unused, 0);
        // A report carries the count too.
        assert!(fleet.lease(t0 + ms(260), 1).is_none());
        fleet.answered(t0 + ms(261), &reply(261_000.0, 270_000.0, 1), true);
        fleet.prune(t0 + ms(400), None);
        let report = fleet.report(t0 + ms(400), None, Some(ms(1000)), None);
        assert_eq!(report.map(|call| call.unused), Some(100_000));
    }

    #[test]
    fn a_slot_woken_for_within_two_timer_ticks_is_used_at_any_rate() {
        let t0 = Instant::now();
        let us = Duration::from_micros;
        let mut fleet = FleetLane::new("k".into(), Duration::from_millis(50), t0);
        assert!(fleet.lease(t0, 3).is_some());
        // 200 r/s: slots 5 ms apart, whose 5% is 250 µs, below what a timer can keep to.
        let fast = ScheduleReply {
            interval: 5_000.0,
            rate: 200.0,
            gap: 5_000.0,
            ..reply(0.0, 0.0, 3)
        };
        fleet.answered(t0, &fast, true);
        // Woken 1.5 ms late, as tokio's timers are: the slot is used, not left.
        fleet.prune(t0 + us(1_500), None);
        assert_eq!(fleet.slots.len(), 3);
        // At 6.5 ms the first is 6.5 ms late, too late still; the second, 1.5 ms late, is not.
        fleet.prune(t0 + us(6_500), None);
        assert_eq!(fleet.slots.len(), 2, "the first is left");
    }

    #[test]
    fn slots_leased_in_a_late_answer_keep_to_the_stores_time() {
        let t0 = Instant::now();
        let us = Duration::from_micros;
        let mut fleet = FleetLane::new("k".into(), Duration::from_millis(50), t0);
        // The store's clock reads 0 at t0; its answers arrive 200 µs after it ran them.
        for i in 0..4u64 {
            let ran = 100_000.0 * i as f64;
            assert!(fleet.lease(t0 + us(ran as u64), 1).is_some());
            let first = ran + 50_000.0;
            fleet.answered(t0 + us(ran as u64 + 200), &reply(ran, first, 1), true);
            fleet.slots.clear();
        }
        // This one took 4 ms to arrive: its slot at 450 ms of the store's clock is still at
        // 450 ms of tokio's, within the quick answers' 200 µs, not 4 ms late.
        assert!(fleet.lease(t0 + us(400_000), 1).is_some());
        fleet.answered(t0 + us(404_000), &reply(400_000.0, 450_000.0, 1), true);
        let Some(&(slot, _)) = fleet.slots.front() else {
            panic!("a slot");
        };
        let late = slot.saturating_duration_since(t0 + us(450_000));
        assert!(late <= us(200), "{late:?}");
    }

    #[test]
    fn a_lease_spans_no_more_than_its_time_so_slow_start_grows_slot_by_slot() {
        let t0 = Instant::now();
        let mut fleet = FleetLane::new("k".into(), Duration::from_millis(50), t0);
        // 13.4 r/s: 100 ms is one slot and a third; the lease is of one.
        fleet.rate = 13.4;
        assert_eq!(fleet.lease(t0, 5).map(|call| call.want), Some(1));
        // 250 r/s: 25 slots.
        let mut fleet = FleetLane::new("k".into(), Duration::from_millis(50), t0);
        fleet.rate = 250.0;
        assert_eq!(fleet.lease(t0, 100).map(|call| call.want), Some(25));
    }

    #[test]
    fn a_slow_store_is_asked_to_confirm_earlier() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut fleet = FleetLane::new("k".into(), ms(50), t0);
        // A quick store: the slot 200 ms ahead is confirmed 20 ms before it.
        assert!(fleet.lease(t0, 1).is_some());
        fleet.answered(t0, &reply(0.0, 200_000.0, 1), true);
        assert!(matches!(fleet.next(t0), Next::Confirm(at) if at == t0 + ms(180)));
        // Round trips of 40 ms: confirmed three of them before.
        let mut fleet = FleetLane::new("k".into(), ms(50), t0);
        for i in 0..20 {
            let asked = t0 + ms(1000 * i);
            fleet.slots.clear();
            assert!(fleet.lease(asked, 1).is_some());
            let now = asked + ms(40);
            fleet.answered(now, &reply(0.0, 400_000.0, 1), true);
        }
        let now = t0 + ms(19_040);
        let Next::Confirm(at) = fleet.next(now) else {
            panic!("a confirmation is due");
        };
        let lead = now + ms(400) - at;
        assert!(lead > ms(110) && lead <= ms(120), "{lead:?}");
    }
}
