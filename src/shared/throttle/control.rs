//! One scope's rate in this process: the [rate law](super::law) on tokio's clock, fed by the
//! scope's answers. The lane pauses it ([`Control::pause`]) for the time the rate held nobody
//! back, as it does for a hold ([`Control::hold`]).

use std::time::Duration;

use tokio::time::Instant;

use crate::shared::law::{cut_from, Law, Meter, Stage, Tally, MAX_RATE, MIN_RATE};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    SlowStart,
    Probe,
    /// Paced at `base` until the instant, as rate-limit headers said.
    Exact(Instant),
}

/// The rate of one scope.
#[derive(Clone, Debug)]
pub(crate) struct Control {
    phase: Phase,
    /// When the phase started, and the rate then.
    since: Instant,
    law: Law,
    last_decrease: Option<Instant>,
    /// Answers since the last decrease.
    tally: Tally,
    meter: Meter,
    /// The meter's clock: seconds since this instant.
    origin: Instant,
    /// The end of the latest pause: pauses that overlap (a hold while the lane stands unused) stop
    /// the clock once, not twice.
    paused_to: Instant,
}

impl Control {
    /// Slow start from `now`.
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            phase: Phase::SlowStart,
            since: now,
            law: Law::START,
            last_decrease: None,
            tally: Tally::default(),
            meter: Meter::new(0.0),
            origin: now,
            paused_to: now,
        }
    }

    /// `at` on the meter's clock.
    fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.origin).as_secs_f64()
    }

    /// Requests per second allowed at `now`.
    pub(crate) fn rate(&self, now: Instant) -> f64 {
        let t = now.saturating_duration_since(self.since).as_secs_f64();
        let stage = match self.phase {
            Phase::SlowStart => Stage::SlowStart,
            Phase::Probe => Stage::Probe,
            Phase::Exact(until) if now < until => Stage::Exact(None),
            Phase::Exact(until) => {
                Stage::Exact(Some(now.saturating_duration_since(until).as_secs_f64()))
            }
        };
        self.law.rate(stage, t)
    }

    /// Whether the rate is still growing from its start, so that estimates from it are worthless.
    pub(crate) fn is_starting(&self) -> bool {
        self.phase == Phase::SlowStart
    }

    /// The spacing between two requests at `now`.
    pub(crate) fn interval(&self, now: Instant) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate(now))
    }

    /// A throttling answer to a request sent at `sent`, `spacing` after the one before it (unknown
    /// for requests the throttle did not pace: those do not count); `held` when it gave a time to
    /// come back. Several answers to requests sent before one decrease are one overshoot, not
    /// several.
    pub(crate) fn throttled(
        &mut self,
        now: Instant,
        sent: Option<Instant>,
        spacing: Option<Duration>,
        backlogged: bool,
        held: bool,
    ) {
        // An answer to a request the throttle did not pace says nothing about the paced rate.
        let Some(sent) = sent else {
            return;
        };
        if self.last_decrease.is_some_and(|last| sent < last) || !self.tally.refuse(held) {
            return;
        }
        // The rate the refused request was sent at: the rate keeps growing while its answer travels.
        // It left one `spacing` after the request before it, at the rate then.
        let spaced = spacing.map_or(f64::INFINITY, |gap| 1.0 / gap.as_secs_f64().max(1e-9));
        let sending = self.rate(sent.min(now)).min(spaced);
        // The server's rate is at most what it was measured to admit while probing (a burst allowance
        // makes the rate sent at overstate it); during slow start the measure lags the rising rate.
        // Without a backlog the measure is of the demand, not of the server.
        let steady =
            backlogged && self.phase == Phase::Probe && self.meter.since(self.secs(self.since));
        let secs = self.secs(now);
        let admitted = self.meter.admitted(secs, held);
        let at = cut_from(sending, admitted.filter(|_| steady));
        let t = sent
            .min(now)
            .saturating_duration_since(self.since)
            .as_secs_f64();
        self.law
            .cut(at, sending, self.phase == Phase::Probe, t, admitted, held);
        self.phase = Phase::Probe;
        self.since = now;
        self.paused_to = now;
        self.last_decrease = Some(now);
        self.tally = Tally::default();
    }

    /// The server said how many requests it admits until when: `remaining` over `reset`, exactly.
    pub(crate) fn exact(&mut self, now: Instant, remaining: u64, reset: Duration) {
        let Some(until) = now.checked_add(reset).filter(|_| !reset.is_zero()) else {
            return;
        };
        let rate = (remaining as f64 / reset.as_secs_f64()).clamp(MIN_RATE, MAX_RATE);
        self.phase = Phase::Exact(until);
        self.since = now;
        self.paused_to = now;
        self.law.exact(rate);
    }

    /// Nothing was learned from `from` to `until`: nothing could be sent (a server-given time), or
    /// nothing waited for the rate (it did not limit the sends). The rate does not grow meanwhile,
    /// so it never comes back at a rate nobody tried. The part already paused is not paused again.
    pub(crate) fn pause(&mut self, from: Instant, until: Instant) {
        let from = from.max(self.paused_to);
        if until <= from {
            return;
        }
        self.paused_to = until;
        if matches!(self.phase, Phase::SlowStart | Phase::Probe) {
            self.since = self.since.checked_add(until - from).unwrap_or(self.since);
        }
    }

    /// An answer that was not a throttling one.
    pub(crate) fn admitted(&mut self, now: Instant) {
        let secs = self.secs(now);
        self.meter.record(secs, 1);
        self.tally.admit(1);
    }

    /// A scope engaged by a throttling answer, while its requests were sent at `sending` per
    /// second (measured over the throttle's recent calls): see [`Law::engage`].
    pub(crate) fn engage(&mut self, now: Instant, sending: Option<f64>) {
        if !self.law.engage(sending) {
            return;
        }
        self.phase = Phase::Probe;
        self.since = now;
        self.paused_to = now;
        self.last_decrease = Some(now);
        self.tally = Tally::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::law::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn slow_start_doubles_then_a_throttling_answer_cuts_to_beta() {
        let t0 = Instant::now();
        let mut c = Control::new(t0);
        assert_eq!(c.rate(t0), START_RATE);
        assert!((c.rate(t0 + DOUBLING) - 2.0 * START_RATE).abs() < 1e-9);
        let at = t0 + secs(1.0);
        let before = c.rate(at);
        c.throttled(at, Some(at), None, true, true);
        assert!((c.rate(at) - BETA * before).abs() < 1e-9);
    }

    #[test]
    fn overlapping_pauses_stop_the_clock_once() {
        let t0 = Instant::now();
        let mut c = Control::new(t0);
        // A hold from 0 to 1 s, and the lane unused from 0.5 to 1.5 s: 1.5 s paused, not 2.
        c.pause(t0, t0 + secs(1.0));
        c.pause(t0 + secs(0.5), t0 + secs(1.5));
        let expected = Control::new(t0).rate(t0 + secs(0.5));
        assert!((c.rate(t0 + secs(2.0)) - expected).abs() < 1e-9);
        // A pause inside one already counted changes nothing.
        c.pause(t0 + secs(0.2), t0 + secs(1.2));
        assert!((c.rate(t0 + secs(2.0)) - expected).abs() < 1e-9);
    }

    #[test]
    fn answers_to_requests_sent_before_a_decrease_are_one_overshoot() {
        let t0 = Instant::now();
        let mut c = Control::new(t0);
        let at = t0 + secs(2.0);
        c.throttled(at, Some(at), None, true, true);
        let after = c.rate(at);
        c.throttled(at + secs(0.01), Some(at - secs(0.05)), None, true, true);
        // Nor does an answer to a request the throttle did not pace.
        c.throttled(at + secs(0.01), None, None, true, true);
        assert!((c.rate(at + secs(0.01)) - after).abs() < 0.01);
        c.throttled(at + secs(0.2), Some(at + secs(0.1)), None, true, true);
        assert!(c.rate(at + secs(0.2)) < after);
    }

    #[test]
    fn overshoots_at_the_rate_the_last_cut_left_cut_deeper_each_time() {
        let t0 = Instant::now();
        let mut c = Control::new(t0);
        // Slow start raced to 16 r/s while the sends lagged: its overshoot is far above the limit.
        let first = t0 + secs(1.5);
        c.throttled(first, Some(first), None, true, true);
        let base = c.rate(first);
        assert!((base - BETA * 16.0).abs() < 1e-9);
        // Throttled again at that rate: the ceiling was wrong, the cut deeper (0.9, then 0.81,
        // 0.66: a few holds to come down from 16 to 10 r/s, not one per 5%).
        let mut at = first;
        for beta in [0.9, 0.81, 0.6561] {
            let before = c.rate(at);
            at += secs(0.2);
            c.throttled(at, Some(at), None, true, true);
            let sent = c.law.ceiling;
            assert!(sent <= before * (1.0 + MARGIN), "{sent} vs {before}");
            assert!((c.rate(at) - beta * sent).abs() < 1e-9, "{beta}");
        }
        let again = at;
        // Once the rate climbed past the cut's, an overshoot is the probe's: BETA again.
        let later = again + secs(10.0);
        let climbed = c.rate(later);
        assert!(climbed > c.law.base * (1.0 + MARGIN));
        c.throttled(later, Some(later), None, true, true);
        assert!((c.rate(later) - BETA * climbed).abs() < 1e-9);
    }

    #[test]
    fn probing_grows_linearly_and_slows_near_a_steady_ceiling() {
        let t0 = Instant::now();
        let mut c = Control::new(t0);
        let at = t0 + secs(2.0);
        // A bare 429 (no time to come back): probing follows slow start at once.
        c.throttled(at, Some(at), None, true, false);
        let base = c.rate(at);
        let one = c.rate(at + secs(1.0)) - base;
        assert!(one > 0.0);
        // Back at the same ceiling: past the plateau, the next probe is slower.
        let again = at + secs((c.law.ceiling - base) / one);
        c.throttled(again, Some(again), None, true, true);
        let past = again + QUIET;
        let two = c.rate(past + secs(1.0)) - c.rate(past);
        assert!(two > 0.0 && two < one * 0.3, "{two} vs {one}");
    }

    #[test]
    fn after_an_overshoot_while_probing_the_rate_holds_below_the_ceiling_until_quiet() {
        let t0 = Instant::now();
        let mut c = Control::new(t0);
        // Slow start's overshoot, a bare 429: probing follows at once, no plateau.
        let first = t0 + secs(2.0);
        c.throttled(first, Some(first), None, true, false);
        let base = c.rate(first);
        assert!((c.rate(first + secs(1.0)) - base - PROBE * c.law.ceiling).abs() < 0.1);
        // Probing overshoots near that ceiling: the rate climbs to the plateau and stays there.
        let at = first + secs(5.0);
        let ceiling = c.rate(at);
        c.throttled(at, Some(at), None, true, true);
        let plateau = (1.0 - MARGIN) * ceiling;
        assert!(c.rate(at + secs(1.0)) < plateau);
        for t in [10.0, 20.0, QUIET.as_secs_f64()] {
            let rate = c.rate(at + secs(t));
            assert!((rate - plateau).abs() < 1e-9, "{t} s: {rate} vs {plateau}");
        }
        // Quiet for the quiet time: probing past the ceiling resumes.
        let past = at + QUIET + secs(5.0);
        assert!(c.rate(past) > ceiling, "{} vs {ceiling}", c.rate(past));
        // Another overshoot near the same ceiling doubles the quiet time.
        let ceiling = c.rate(past);
        c.throttled(past, Some(past), None, true, true);
        let plateau = (1.0 - MARGIN) * ceiling;
        let held = c.rate(past + QUIET * 2);
        assert!((held - plateau).abs() < 1e-9, "{held} vs {plateau}");
        assert!(c.rate(past + QUIET * 2 + secs(10.0)) > plateau);
        // Holds do not count as quiet time.
        c.pause(past, past + secs(10.0));
        assert!((c.rate(past + QUIET * 2 + secs(10.0)) - plateau).abs() < 1e-9);
        // An overshoot at the plateau: it was too close, the next one is twice as far below.
        let early = past + secs(30.0);
        let ceiling = c.rate(early);
        c.throttled(early, Some(early), None, true, true);
        let plateau = (1.0 - 2.0 * MARGIN) * ceiling;
        let held = c.rate(early + secs(20.0));
        assert!((held - plateau).abs() < 1e-9, "{held} vs {plateau}");
    }

    #[test]
    fn after_slow_starts_overshoot_that_held_the_scope_the_rate_stays_where_the_cut_left_it() {
        let t0 = Instant::now();
        let mut c = Control::new(t0);
        let first = t0 + secs(2.0);
        let sent = c.rate(first);
        // A 429 with a time to come back: each overshoot costs everyone that time.
        c.throttled(first, Some(first), None, true, true);
        let cut = BETA * sent;
        for t in [0.0, 1.0, 10.0, QUIET.as_secs_f64()] {
            let rate = c.rate(first + secs(t));
            assert!((rate - cut).abs() < 1e-9, "{t} s: {rate} vs {cut}");
        }
        // Quiet for the quiet time: probing past the ceiling resumes.
        assert!(c.rate(first + QUIET + secs(10.0)) > cut);
    }

    #[test]
    fn the_quiet_time_and_the_margin_are_capped() {
        let mut quiet = 0.0;
        for _ in 0..10 {
            quiet = quiet_after(true, true, quiet, true);
        }
        assert_eq!(quiet, MAX_QUIET.as_secs_f64());
        assert_eq!(quiet_after(true, false, quiet, true), QUIET.as_secs_f64());
        assert_eq!(quiet_after(false, true, quiet, false), 0.0);
        assert_eq!(quiet_after(false, true, quiet, true), QUIET.as_secs_f64());
        let mut margin = MARGIN;
        for _ in 0..10 {
            margin = margin_after(true, margin);
        }
        assert_eq!(margin, MAX_MARGIN);
        assert_eq!(margin_after(false, MARGIN), MARGIN);
    }

    #[test]
    fn the_measured_admitted_rate_bounds_the_ceiling_while_backlogged() {
        let t0 = Instant::now();
        let mut c = Control::new(t0);
        // Slow start far past the server's rate (a burst allowance hid it), then a first cut.
        let first = t0 + secs(4.0);
        c.throttled(first, Some(first), None, true, true);
        assert!(c.rate(first) > 20.0);
        // The server admits 10 a second for 3 s.
        for i in 0..30 {
            c.admitted(first + secs(0.1 * f64::from(i)));
        }
        let at = first + secs(3.0);
        let mut idle = c.clone();
        c.throttled(at, Some(at), None, true, true);
        let rate = c.rate(at);
        assert!((9.0..=10.0).contains(&rate), "{rate}");
        // Without a backlog the measure is of the demand: the rate sent at is used.
        idle.throttled(at, Some(at), None, false, true);
        assert!(idle.rate(at) > 20.0);
    }

    #[test]
    fn sparse_bare_refusals_cut_nothing_and_a_refusing_limit_cuts() {
        let t0 = Instant::now();
        let mut c = Control::new(t0);
        c.engage(t0, Some(100.0));
        let engaged = c.rate(t0);
        assert!(
            (engaged - 100.0 * ENGAGE_HEADROOM).abs() < 1e-9,
            "{engaged}"
        );
        // 99 admitted, then a bare refusal: 1% is a quota of its own, not the scope's rate.
        let mut at = t0;
        for _ in 0..99 {
            at += secs(0.01);
            c.admitted(at);
        }
        c.throttled(at, Some(at), None, true, false);
        assert!(c.rate(at) >= engaged, "no cut: {}", c.rate(at));
        // The same refusal with a time to come back cuts: each overshoot costs a hold.
        let mut held = c.clone();
        held.throttled(at, Some(at), None, true, true);
        assert!(held.rate(at) < engaged);
        // A limit refuses a growing share: past 5% of the answers, bare refusals cut too.
        for _ in 0..5 {
            at += secs(0.01);
            c.throttled(at, Some(at), None, true, false);
        }
        assert!(c.rate(at) < engaged, "cut: {}", c.rate(at));
        // Too few answers since the last decrease to tell: the first refusal cuts.
        let mut young = Control::new(t0);
        young.engage(t0, Some(100.0));
        young.throttled(t0 + secs(0.01), Some(t0 + secs(0.01)), None, true, false);
        assert!(young.rate(t0 + secs(0.01)) < engaged);
    }

    #[test]
    fn rate_limit_headers_set_the_rate_until_the_reset() {
        let t0 = Instant::now();
        let mut c = Control::new(t0);
        c.exact(t0, 49, secs(4.9));
        assert!((c.rate(t0 + secs(4.0)) - 10.0).abs() < 1e-9);
        assert!(
            c.rate(t0 + secs(6.0)) > 10.0,
            "probes once the reset has passed"
        );
        // Extreme values neither panic nor leave the bounds.
        c.exact(t0, u64::MAX, Duration::from_nanos(1));
        assert_eq!(c.rate(t0), MAX_RATE);
        c.exact(t0, 0, Duration::MAX);
        c.exact(t0, 1, secs(1e9));
        assert_eq!(c.rate(t0), MIN_RATE);
    }
}
