//! A fleet's slot schedule for one scope, GCRA-style: the next free send time (TAT), the hold the
//! server gave, and the [rate law](crate::throttle::law) kept once for the whole fleet, fed by
//! the answers its processes report.
//!
//! This is the in-memory twin of `schedule.lua`, line for line, so that the local store and Redis
//! behave alike; times are microseconds of the store's clock (the law's, seconds).

use super::backend::{ScheduleCall, ScheduleReply};
use crate::shared::law::{cut_from, Law, Meter, Stage, Tally, MAX_RATE, MIN_RATE};

/// A quiet schedule (nothing sent or held) is forgotten after this long, as a lane is.
pub(crate) const FORGET_MS: u64 = 60_000;
/// The most authorities a process learns are engaged fleet-wide (as many as a throttle tracks).
pub(crate) const MAX_ENGAGED: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    SlowStart,
    Probe,
    /// Paced at `base` until the instant, as rate-limit headers said.
    Exact(f64),
}

/// One scope's slot schedule.
#[derive(Clone, Debug)]
pub(crate) struct SlotSchedule {
    phase: Phase,
    since: f64,
    law: Law,
    /// When the rate was last cut; slots issued before it were the same overshoot.
    decreased: f64,
    /// The next free slot.
    tat: f64,
    /// No slot before this.
    hold: f64,
    /// The last slot issued.
    last: f64,
    /// When the rate was last found to hold nobody back (or the schedule began). The rate's growth
    /// is accounted for up to the latest of this, the last slot issued (its request waited for
    /// it), the hold's end (paused) and the last cut (the phase began).
    accounted: f64,
    /// The fleet's answers since the last cut, and its rate admitted (on the law's clock).
    tally: Tally,
    meter: Meter,
}

impl SlotSchedule {
    /// Slow start from `now`, or probing from the rate the reporting process was sending at when
    /// `call` engages the scope; engaged by a throttling answer, the first slot is one interval
    /// away.
    pub(crate) fn new(now: f64, call: &ScheduleCall) -> Self {
        let mut law = Law::START;
        let sending = call.throttled.map(|refused| refused.sending);
        let engaged = law.engage(sending.filter(|rate| *rate > 0.0));
        let mut schedule = Self {
            phase: if engaged {
                Phase::Probe
            } else {
                Phase::SlowStart
            },
            since: now,
            law,
            decreased: if engaged { now } else { -1.0 },
            tat: now,
            hold: 0.0,
            last: -1.0,
            accounted: now,
            tally: Tally::default(),
            meter: Meter::new(now / 1e6),
        };
        if call.throttled.is_some() {
            schedule.tat = now + 1e6 / schedule.rate(now);
        }
        schedule
    }

    fn rate(&self, at: f64) -> f64 {
        let t = (at - self.since).max(0.0) / 1e6;
        let stage = match self.phase {
            Phase::SlowStart => Stage::SlowStart,
            Phase::Probe => Stage::Probe,
            Phase::Exact(until) if at < until => Stage::Exact(None),
            Phase::Exact(until) => Stage::Exact(Some((at - until) / 1e6)),
        };
        self.law.rate(stage, t)
    }

    /// Applies `call` at `now`.
    pub(crate) fn exchange(&mut self, now: f64, call: ScheduleCall) -> ScheduleReply {
        if call.admitted > 0 {
            self.meter.record(now / 1e6, call.admitted);
            self.tally.admit(call.admitted);
        }
        // A throttling answer to a slot issued after the last cut: the rate it was issued at
        // overshot, unless the sparse rule says otherwise. Answers to slots issued before the cut
        // are that same overshoot.
        if let Some(refused) = call.throttled
            && let Some(slot) = refused.slot
            && slot.issued >= self.decreased
            && self.tally.refuse(refused.held)
        {
            // The rate it was sent at: the rate grows while a slot waits, but the slot keeps the
            // spacing it was issued with, after the slot before it.
            let mut sending = self.rate(slot.at.min(now));
            if slot.rate > 0.0 {
                sending = sending.min(slot.rate);
            }
            let steady = refused.backlogged
                && self.phase == Phase::Probe
                && self.meter.since(self.since / 1e6);
            let admitted = self.meter.admitted(now / 1e6, refused.held);
            let at = cut_from(sending, admitted.filter(|_| steady));
            let t = (slot.at.min(now) - self.since).max(0.0) / 1e6;
            self.law.cut(
                at,
                sending,
                self.phase == Phase::Probe,
                t,
                admitted,
                refused.held,
            );
            self.phase = Phase::Probe;
            self.since = now;
            self.decreased = now;
            self.tally = Tally::default();
        }
        // A lease whose first slot is free at once, or a hold while no slot is outstanding: the
        // rate held nobody back since the last slot, and does not grow for that time (the lane's
        // rule, `Lane::unused`).
        let accounted = self
            .accounted
            .max(self.last)
            .max(self.hold)
            .max(self.decreased);
        let free = self.tat.max(self.hold) <= now;
        if free && (call.want > 0 || call.hold_ms > 0) {
            if now > accounted && matches!(self.phase, Phase::SlowStart | Phase::Probe) {
                self.since += now - accounted;
            }
            self.accounted = accounted.max(now);
        }
        // Slots a process woke too late for held nobody back either: their time does not count
        // (at most back to the phase's start).
        if call.unused > 0
            && matches!(self.phase, Phase::SlowStart | Phase::Probe)
            && self.since < now
        {
            self.since = (self.since + call.unused as f64).min(now);
        }
        if call.hold_ms > 0 {
            let until = now + call.hold_ms as f64 * 1e3;
            let held = self.hold.max(now);
            if until > held {
                // Nothing is learned while held: the rate does not grow meanwhile.
                if self.phase == Phase::SlowStart || self.phase == Phase::Probe {
                    self.since += until - held;
                }
                self.hold = until;
            }
        }
        if let Some((remaining, reset_ms)) = call.quota
            && reset_ms > 0
        {
            let rate = (remaining as f64 * 1e3 / reset_ms as f64).clamp(MIN_RATE, MAX_RATE);
            self.phase = Phase::Exact(now + reset_ms as f64 * 1e3);
            self.since = now;
            self.law.exact(rate);
        }
        // The lease: slots from the next free one (not before the hold), spaced at the rate, so
        // that after a hold the fleet leaves one at a time, not all at once.
        let first = self.tat.max(now).max(self.hold);
        let rate = self.rate(first);
        let interval = 1e6 / rate;
        // The gap before the first slot: the spacing it was sent at, for the cut at its answer.
        let gap = if self.last >= 0.0 {
            first - self.last
        } else {
            0.0
        };
        if call.want > 0 {
            self.tat = first + f64::from(call.want) * interval;
            self.last = first + f64::from(call.want - 1) * interval;
        }
        ScheduleReply {
            now,
            first: first.floor(),
            interval: interval.floor(),
            granted: call.want,
            hold: self.hold.floor(),
            rate: (rate * 1e3).floor() / 1e3,
            gap: gap.floor(),
            decreased: self.decreased.floor(),
        }
    }

    /// Whether nothing is scheduled or held at `now` and it has been so for [`FORGET_MS`].
    pub(crate) fn is_quiet(&self, now: f64) -> bool {
        self.tat.max(self.hold) + FORGET_MS as f64 * 1e3 <= now
    }
}

#[cfg(test)]
mod tests {
    use super::super::backend::{Refused, SlotSent};
    use super::*;
    use crate::shared::law::BETA;
    use crate::shared::law::START_RATE;

    fn call(want: u32) -> ScheduleCall {
        ScheduleCall::lease(want)
    }

    /// A throttling answer with a time to come back, to the slot issued at `issued` for `at`.
    fn held(issued: f64, at: f64, rate: f64) -> Refused {
        Refused {
            slot: Some(SlotSent { issued, at, rate }),
            held: true,
            backlogged: true,
            sending: 0.0,
        }
    }

    /// A schedule whose fleet always has requests waiting for slots: its rate grows with time, as
    /// a process's law alone does (the lane, not the law, knows whether anyone waits).
    fn busy() -> SlotSchedule {
        let mut s = SlotSchedule::new(0.0, &call(0));
        s.accounted = f64::INFINITY;
        s
    }

    #[test]
    fn slots_follow_one_another_at_the_rate_and_start_at_the_hold() {
        let mut s = SlotSchedule::new(0.0, &call(0));
        let a = s.exchange(0.0, call(2));
        assert_eq!((a.first, a.interval, a.granted), (0.0, 500_000.0, 2));
        let b = s.exchange(0.0, call(1));
        assert_eq!(b.first, 1_000_000.0, "after the slots leased before");
        let held = s.exchange(
            0.0,
            ScheduleCall {
                hold_ms: 3000,
                ..call(1)
            },
        );
        assert_eq!(held.first, 3_000_000.0);
        let next = s.exchange(0.0, call(1));
        assert_eq!(
            next.first,
            3_000_000.0 + held.interval,
            "spread after the hold"
        );
    }

    #[test]
    fn the_rate_grows_only_while_requests_wait_for_their_slots() {
        let mut s = SlotSchedule::new(0.0, &call(0));
        let first = s.exchange(0.0, call(1));
        // 10 s later: nobody leased a slot meanwhile, so slow start has not doubled twenty times.
        let quiet = s.exchange(10e6, call(4));
        assert_eq!((first.rate, quiet.rate), (START_RATE, START_RATE));
        // Four slots at 2 r/s, and the next one after them: their requests waited 2 s for it,
        // and that counts (four doublings).
        let next = s.exchange(11.5e6, call(1));
        assert!(
            (next.rate - START_RATE * 16.0).abs() < 1e-3,
            "{}",
            next.rate
        );
        // A hold, then a lease long after it: neither the hold nor the quiet after it counts.
        let held = ScheduleCall {
            hold_ms: 1000,
            ..call(0)
        };
        s.exchange(12e6, held);
        let after = s.exchange(20e6, call(1));
        assert!(
            (after.rate - next.rate).abs() < 1e-3,
            "{} vs {}",
            after.rate,
            next.rate
        );
    }

    #[test]
    fn slots_a_process_woke_too_late_for_do_not_count() {
        let mut s = SlotSchedule::new(0.0, &call(0));
        let mut twin = SlotSchedule::new(0.0, &call(0));
        for s in [&mut s, &mut twin] {
            s.exchange(0.0, call(8));
        }
        // Eight slots at 2 r/s; at 3.5 s, the last, the fleet says three of them (1.5 s) went
        // unused.
        let used = twin.exchange(3.5e6, call(1));
        let told = s.exchange(
            3.5e6,
            ScheduleCall {
                unused: 1_500_000,
                ..call(1)
            },
        );
        // 1.5 s less of slow start (three slots of 500 ms): three doublings less.
        assert!(
            (used.rate / told.rate - 8.0).abs() < 1e-3,
            "{} vs {}",
            used.rate,
            told.rate
        );
        // However many are reported, the rate falls back no further than the phase starting now
        // (the next slot, in the future, is given at the rate it will have then).
        let many = s.exchange(
            3.6e6,
            ScheduleCall {
                unused: 1_000_000_000,
                ..call(0)
            },
        );
        let t = (many.first - 3.6e6) / 1e6;
        let from_now = START_RATE * (t / 0.5).exp2();
        assert!(
            (many.rate - from_now).abs() < 0.01,
            "{} vs {from_now}",
            many.rate
        );
    }

    #[test]
    fn one_cut_per_overshoot() {
        let mut s = SlotSchedule::new(0.0, &call(0));
        let at = 2e6;
        let issued_rate = s.rate(at - 1e3);
        let cut = |issued| ScheduleCall {
            throttled: Some(held(issued, issued, 0.0)),
            ..call(0)
        };
        let r = s.exchange(at, cut(at - 1e3));
        assert!(
            (r.rate - BETA * issued_rate).abs() < 0.01,
            "{} vs {issued_rate}",
            r.rate
        );
        let again = s.exchange(at + 1e3, cut(at - 2e3));
        assert!((again.rate - r.rate).abs() < 0.01, "the same overshoot");
        // An unpaced request's answer does not cut.
        let unpaced = s.exchange(
            at + 2e3,
            ScheduleCall {
                throttled: Some(Refused {
                    slot: None,
                    ..held(0.0, 0.0, 0.0)
                }),
                ..call(0)
            },
        );
        assert!((unpaced.rate - r.rate).abs() < 0.01);
        let later = s.exchange(at + 5e5, cut(at + 4e5));
        assert!(later.rate < r.rate);
    }

    /// A process's law and the fleet's schedule, given throttling answers at `cuts` (seconds, each
    /// to a request sent 1 ms before), agree on the rate at every cut and at every one of `looks`.
    fn follow_a_process_law(cuts: &[f64], looks: &[f64]) {
        use crate::shared::throttle::control::Control;
        use std::time::Duration;
        use tokio::time::Instant;

        let t0 = Instant::now();
        let mut local = Control::new(t0);
        let mut s = busy();
        let mut events: Vec<(f64, bool)> = cuts.iter().map(|&t| (t, true)).collect();
        events.extend(looks.iter().map(|&t| (t, false)));
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (t, cut) in events {
            let now = t0 + Duration::from_secs_f64(t);
            let sent = t - 0.001;
            let fleet = s.exchange(
                t * 1e6,
                ScheduleCall {
                    throttled: cut.then_some(held(sent * 1e6, sent * 1e6, 0.0)),
                    ..call(0)
                },
            );
            if cut {
                let sent = t0 + Duration::from_secs_f64(sent);
                local.throttled(now, Some(sent), None, true, true);
            }
            let rate = local.rate(now);
            assert!(
                (fleet.rate - rate).abs() < 2e-3,
                "{t} s: {} vs {rate}",
                fleet.rate
            );
        }
    }

    #[test]
    fn the_fleet_follows_a_process_law_through_the_plateau() {
        let quiet = crate::shared::law::QUIET.as_secs_f64();
        // Slow start's overshoot, a probe's near it, one after the quiet time, one at the plateau.
        let cuts = [2.0, 7.0, 7.0 + quiet + 5.0, 80.0];
        let looks = [
            3.0,
            7.5,
            20.0,
            7.0 + quiet,
            7.0 + quiet + 3.0,
            60.0,
            90.0,
            200.0,
        ];
        follow_a_process_law(&cuts, &looks);
    }

    #[test]
    fn the_fleet_cuts_deeper_as_a_process_does_when_a_ceiling_is_refuted() {
        // Slow start's overshoot at 16 r/s, then two at the rate the last cut left: 0.9, 0.81.
        let mut s = busy();
        let cut = |s: &mut SlotSchedule, t: f64| {
            let sent = (t - 0.001) * 1e6;
            s.exchange(
                t * 1e6,
                ScheduleCall {
                    throttled: Some(held(sent, sent, 0.0)),
                    ..call(0)
                },
            )
            .rate
        };
        let base = cut(&mut s, 1.5);
        let once = cut(&mut s, 1.7);
        let twice = cut(&mut s, 1.9);
        // Of the rate sent at, which probing had raised a little since each cut.
        assert!(once > 0.9 * base && once < 0.91 * base, "{once} vs {base}");
        assert!(
            twice > 0.81 * once && twice < 0.82 * once,
            "{twice} vs {once}"
        );
        follow_a_process_law(&[1.5, 1.7, 1.9, 12.0], &[1.6, 1.8, 3.0, 11.0, 20.0, 60.0]);
    }

    #[test]
    fn the_fleet_engages_counts_sparse_refusals_and_keeps_the_floor_as_a_process_does() {
        use crate::shared::law::ENGAGE_HEADROOM;
        // Engaged by a process sending at 40 r/s: probing from 44, the first slot one interval on.
        let engage = ScheduleCall {
            throttled: Some(Refused {
                slot: None,
                sending: 40.0,
                ..held(0.0, 0.0, 0.0)
            }),
            ..call(0)
        };
        let mut s = SlotSchedule::new(0.0, &engage);
        let r = s.exchange(0.0, engage);
        assert!((r.rate - 40.0 * ENGAGE_HEADROOM).abs() < 0.05, "{}", r.rate);
        assert!((r.first - 1e6 / (40.0 * ENGAGE_HEADROOM)).abs() < 1.0);
        // 40 answers admitted, then a bare refusal: sparse, no cut; with a time to come back, a cut.
        s.exchange(
            10_000.0,
            ScheduleCall {
                admitted: 40,
                ..call(0)
            },
        );
        let bare = |at: f64| ScheduleCall {
            throttled: Some(Refused {
                held: false,
                ..held(at, at, 0.0)
            }),
            ..call(0)
        };
        let mut held_too = s.clone();
        let kept = s.exchange(20_000.0, bare(15_000.0));
        assert!(kept.rate >= r.rate, "{} vs {}", kept.rate, r.rate);
        let cut = held_too.exchange(
            20_000.0,
            ScheduleCall {
                throttled: Some(held(15_000.0, 15_000.0, 0.0)),
                ..call(0)
            },
        );
        assert!(cut.rate < r.rate);
        // The fleet admitted 30 a second for two seconds: a cut at 20 r/s stops at that floor.
        let mut f = busy();
        for i in 1..=60 {
            f.exchange(
                f64::from(i) * 33_333.0,
                ScheduleCall {
                    admitted: 1,
                    ..call(0)
                },
            );
        }
        let floor = f.exchange(
            2.01e6,
            ScheduleCall {
                throttled: Some(held(2e6, 2e6, 20.0)),
                ..call(0)
            },
        );
        assert!(floor.rate > 25.0, "{}", floor.rate);
    }

    #[test]
    fn quota_sets_the_rate_exactly() {
        let mut s = SlotSchedule::new(0.0, &call(0));
        let r = s.exchange(
            0.0,
            ScheduleCall {
                quota: Some((49, 4900)),
                ..call(1)
            },
        );
        assert_eq!((r.rate, r.interval), (10.0, 100_000.0));
        assert!(!s.is_quiet(59e6) && s.is_quiet(61e6));
    }
}
