//! The control law: the rate one scope is sent at, learned from what it answers.
//!
//! Three phases, in the spirit of TCP's and of AWS's adaptive retry mode (a CUBIC token bucket):
//!
//! - **Slow start**: the rate doubles every [`DOUBLING`] from [`START_RATE`] until the first
//!   throttling answer. Growth is continuous, so the rate at that answer is close to what the server
//!   admits. It counts only the time the rate held requests back: the lane pauses the law
//!   ([`Control::pause`]) for the time it went unused, as it does for a hold.
//! - **Probe**: after a throttling answer the rate drops to [`BETA`] times the lower of the rate it
//!   was sent at and the rate the server was measured to admit (a burst allowance makes the former
//!   overstate the server's rate), the ceiling, then grows (linearly, speeding up over time) to find
//!   out whether the server admits more. Against a limiter with `Retry-After` every probe that
//!   overshoots costs a hold of the whole scope, so a server whose limit does not move is
//!   probed less and less, in the spirit of CUBIC's plateau: after an overshoot while probing (the
//!   ceiling is then measured to within a probing step; slow start's overshoot is not that
//!   precise) the rate climbs to a plateau [`MARGIN`] below the ceiling and stays there until the
//!   scope has been quiet for [`QUIET`], and only then probes past the ceiling. Every
//!   throttling answer close to the previous ceiling doubles that quiet time (up to [`MAX_QUIET`])
//!   and quarters the probing speed past it; one at the plateau, before the quiet time, doubles
//!   the margin (up to [`MAX_MARGIN`]): the jitter of the sends (timers, several processes
//!   sharing a schedule) brings requests closer together than the rate says. An overshoot at no
//!   more than the rate the last cut left refutes that cut's ceiling: the cut is deeper
//!   ([`BETA_REFUTED`]), and deeper again for each such overshoot in a row.
//! - **Exact**: rate-limit headers that give the remaining quota and its reset set the rate to
//!   remaining over reset until the reset; nothing is guessed while the server says.

use std::time::Duration;

use tokio::time::Instant;

/// How far above the rate it was sent at a scope engaged by a throttling answer starts.
pub(crate) const ENGAGE_HEADROOM: f64 = 1.1;
/// Bare throttling answers (no time to come back) under this share of the answers since the
/// last decrease cut nothing...
pub(crate) const SPARSE: f64 = 0.05;
/// ...once at least this many answers have come since.
pub(crate) const SPARSE_AFTER: u32 = 10;
/// The slowest pace: one request every 20 s.
pub(crate) const MIN_RATE: f64 = 0.05;
/// Past this rate pacing is moot: requests are not spaced at all.
pub(crate) const MAX_RATE: f64 = 1.0e6;
/// Where slow start begins, in requests per second.
pub(crate) const START_RATE: f64 = 2.0;
/// How long slow start takes to double the rate.
pub(crate) const DOUBLING: Duration = Duration::from_millis(500);
/// The multiplicative decrease on a throttling answer.
pub(crate) const BETA: f64 = 0.95;
/// The decrease when the rate sent at was no higher than where the last cut left it: that cut's
/// ceiling was too high, by how much is unknown. Slow start, growing 15% per interval at 10 r/s,
/// can leave its cut a little above the limit; a fleet whose processes woke too late for their
/// slots lets it race far past it. So the first such cut is a little deeper than [`BETA`], and each
/// further one in a row squares the last (0.9, 0.81, 0.66, 0.43): a few holds, not one per 5%.
pub(crate) const BETA_REFUTED: f64 = 0.9;
/// The first probing speed: this fraction of the ceiling added per second.
pub(crate) const PROBE: f64 = 0.01;
/// The slowest probing speed.
pub(crate) const MIN_PROBE: f64 = 0.001;
/// After an overshoot while probing, the rate approaches the ceiling and does not pass a plateau
/// this fraction below it for the quiet time: close enough to lose little, far enough that a
/// ceiling measured a little above the server's limit is not overshot again at once.
pub(crate) const MARGIN: f64 = 0.01;
/// The widest margin: the rate the cut leaves, so that the plateau is never below it.
pub(crate) const MAX_MARGIN: f64 = 1.0 - BETA;
/// How long the rate stays at the plateau, without a throttling answer, before probing past the
/// ceiling.
pub(crate) const QUIET: Duration = Duration::from_secs(30);
/// The longest quiet time: it doubles at each overshoot near the same ceiling, and a server whose
/// limit rises is still found within minutes.
pub(crate) const MAX_QUIET: Duration = Duration::from_secs(240);
/// Probing doubles its speed every this many seconds without a throttling answer, so that a ceiling
/// measured too low is left behind in tens of seconds, not minutes.
pub(crate) const ACCELERATION: f64 = 10.0;

/// The probing rate `t` seconds after a cut to `base` under `ceiling`: a climb at [`PROBE`] to the
/// plateau `margin` below the ceiling, held until `quiet` seconds (none when 0), then probing at
/// `probe` past it. The store's schedule (`schedule.rs`, `schedule.lua`) follows the same law.
pub(crate) fn probing(base: f64, ceiling: f64, probe: f64, quiet: f64, margin: f64, t: f64) -> f64 {
    let grown = |speed: f64, t: f64| speed * ceiling * t * (t / ACCELERATION).exp2();
    if quiet <= 0.0 {
        return base + grown(probe, t);
    }
    let plateau = (1.0 - margin) * ceiling;
    let climbed = (base + grown(PROBE, t.min(quiet))).min(plateau);
    match t > quiet {
        true => climbed + grown(probe, t - quiet),
        false => climbed,
    }
}

/// The quiet time after a throttling answer: none after slow start's overshoot (its ceiling may be
/// well above the server's limit, so probing finds it first), doubled for an overshoot near the
/// same ceiling, else [`QUIET`].
pub(crate) fn quiet_after(probing: bool, near: bool, quiet: f64) -> f64 {
    match (probing, near && quiet > 0.0) {
        (false, _) => 0.0,
        (true, true) => (2.0 * quiet).min(MAX_QUIET.as_secs_f64()),
        (true, false) => QUIET.as_secs_f64(),
    }
}

/// The margin after a throttling answer: doubled when it came at the plateau, before the quiet
/// time (`early`): the plateau was too close for the jitter of the sends.
pub(crate) fn margin_after(early: bool, margin: f64) -> f64 {
    match early {
        true => (2.0 * margin).min(MAX_MARGIN),
        false => margin,
    }
}

/// The rate law's state apart from its clock: the same for a process's [`Control`] (on tokio's
/// clock) and a fleet's schedule (`schedule.rs`, on the store's), so that both follow one law.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Law {
    /// The rate when the phase started.
    pub(crate) base: f64,
    /// The rate at the last throttling answer, 0 before any.
    pub(crate) ceiling: f64,
    /// Fraction of the ceiling added per second while probing past it.
    pub(crate) probe: f64,
    /// Seconds at the plateau before probing past the ceiling (0: none).
    pub(crate) quiet: f64,
    /// How far below the ceiling the plateau is, as a fraction of it.
    pub(crate) margin: f64,
}

/// Where the law is, for [`Law::rate`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Stage {
    SlowStart,
    Probe,
    /// Paced exactly, as rate-limit headers said: `None` until their reset, then the seconds since.
    Exact(Option<f64>),
}

impl Law {
    /// Slow start's beginning.
    pub(crate) const START: Self = Self {
        base: START_RATE,
        ceiling: 0.0,
        probe: PROBE,
        quiet: 0.0,
        margin: MARGIN,
    };

    /// Requests per second `t` seconds into `stage`.
    pub(crate) fn rate(&self, stage: Stage, t: f64) -> f64 {
        let rate = match stage {
            Stage::SlowStart => self.base * (t / DOUBLING.as_secs_f64()).min(64.0).exp2(),
            Stage::Probe => probing(
                self.base,
                self.ceiling,
                self.probe,
                self.quiet,
                self.margin,
                t,
            ),
            Stage::Exact(None) => self.base,
            Stage::Exact(Some(past)) => self.base + self.probe * self.base * past,
        };
        rate.clamp(MIN_RATE, MAX_RATE)
    }

    /// A throttling answer to a request sent at `sending` requests per second, `t` seconds into a
    /// probing phase (`probing`) or another, with `at` the server's rate as measured (at most
    /// `sending`): the cut to [`BETA`] of it, the new ceiling, and the probing speed, quiet time and
    /// margin that follow. Sent at no more than the last cut's rate ([`refutes`](Self::refutes)),
    /// the cut is deeper ([`Law::refuted_beta`]), and the old ceiling counts for nothing.
    pub(crate) fn cut(&mut self, at: f64, sending: f64, probing: bool, t: f64) {
        let refuted = probing && self.refutes(sending) && at >= sending;
        let near =
            !refuted && self.ceiling > 0.0 && (at - self.ceiling).abs() <= 0.1 * self.ceiling;
        let plateau = !refuted && probing && self.quiet > 0.0 && t < self.quiet;
        self.margin = margin_after(plateau, self.margin);
        self.quiet = quiet_after(probing, near, self.quiet);
        self.probe = if near {
            (self.probe / 4.0).max(MIN_PROBE)
        } else {
            PROBE
        };
        let beta = if refuted { self.refuted_beta() } else { BETA };
        self.ceiling = at;
        self.base = (at * beta).max(MIN_RATE);
    }

    /// The decrease for a refuted ceiling: [`BETA_REFUTED`], or the square of the last cut's when
    /// that was one too (read from where it left the rate, so that no count is kept).
    pub(crate) fn refuted_beta(&self) -> f64 {
        let last = match self.ceiling > 0.0 {
            true => self.base / self.ceiling,
            false => BETA,
        };
        BETA_REFUTED.min(last * last)
    }

    /// Whether an overshoot at `sending` requests per second, while probing, came at no more than
    /// the rate the last cut left (within [`MARGIN`]): the ceiling that cut measured was too high.
    pub(crate) fn refutes(&self, sending: f64) -> bool {
        sending <= self.base * (1.0 + MARGIN)
    }

    /// Rate-limit headers: exactly `rate` until their reset.
    pub(crate) fn exact(&mut self, rate: f64) {
        self.base = rate;
        self.ceiling = rate;
    }
}

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
    /// Answers since the last decrease: admitted, refused.
    since_cut: [u32; 2],
    meter: Meter,
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
            since_cut: [0; 2],
            meter: Meter::new(now),
            paused_to: now,
        }
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

    /// A throttling answer to a request sent at `sent`, `spacing` after the one before it (unknown for requests the throttle did not
    /// pace: those do not count). Several answers to requests sent before one decrease are one
    /// overshoot, not several.
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
        // Answers to requests sent before the last decrease are the same overshoot.
        if self.last_decrease.is_some_and(|last| sent < last) {
            return;
        }
        // Bare refusals sparse among the answers since the last decrease are about the requests
        // they refused (a quota per user, per endpoint), not the scope's rate: a cut would not
        // stop them, only slow everyone else. A limiter the scope overshoots refuses a growing
        // share. One that gives a time to come back (`held`) holds the scope for each overshoot,
        // so those are cut at once.
        let [admitted, refused] = self.since_cut;
        let answers = admitted.saturating_add(refused);
        self.since_cut[1] = refused.saturating_add(1);
        if !held
            && answers >= SPARSE_AFTER
            && f64::from(refused + 1) < SPARSE * f64::from(answers + 1)
        {
            return;
        }
        // The rate the refused request was sent at: the rate keeps growing while its answer travels.
        // It left one `spacing` after the request before it, at the rate then.
        let spaced = spacing.map_or(f64::INFINITY, |gap| 1.0 / gap.as_secs_f64().max(1e-9));
        let sending = self.rate(sent.min(now)).min(spaced);
        // The server's rate is at most what it was measured to admit while probing (a burst allowance
        // makes the rate sent at overstate it); during slow start the measure lags the rising rate.
        // Without a backlog the measure is of the demand, not of the server.
        let steady = backlogged && self.phase == Phase::Probe && self.meter.since(self.since);
        let admitted = match steady {
            true => self.meter.admitted(now).unwrap_or(f64::INFINITY),
            false => f64::INFINITY,
        };
        // Only a clear gap is a burst allowance; otherwise the rate sent at is the better measure.
        let at = match admitted < 0.8 * sending {
            true => admitted.max(MIN_RATE),
            false => sending,
        };
        let t = sent
            .min(now)
            .saturating_duration_since(self.since)
            .as_secs_f64();
        self.law.cut(at, sending, self.phase == Phase::Probe, t);
        // Never below what the scope was measured to admit: what it admitted, it admits.
        if let Some(admitted) = self.meter.admitted(now) {
            self.law.base = self.law.base.max(admitted.min(MAX_RATE));
        }
        self.phase = Phase::Probe;
        self.since = now;
        self.paused_to = now;
        self.last_decrease = Some(now);
        self.since_cut = [0; 2];
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
        self.meter.record(now);
        self.since_cut[0] = self.since_cut[0].saturating_add(1);
    }

    /// A scope engaged by a throttling answer, while its requests were sent at `sending` per
    /// second (measured over the throttle's recent calls): the rate starts [`ENGAGE_HEADROOM`]
    /// above it, so that the load it was carrying is not queued on one answer's word, and probes
    /// from there; a limit at that rate refuses densely, and is cut at once. Unmeasured, or
    /// slower than [`START_RATE`], slow start begins.
    pub(crate) fn engage(&mut self, now: Instant, sending: Option<f64>) {
        let Some(sending) = sending.filter(|rate| *rate > START_RATE) else {
            return;
        };
        let sending = sending.min(MAX_RATE);
        self.law.cut(sending, sending, false, 0.0);
        self.law.base = sending * ENGAGE_HEADROOM;
        self.phase = Phase::Probe;
        self.since = now;
        self.paused_to = now;
        self.last_decrease = Some(now);
        self.since_cut = [0; 2];
    }
}

/// Answers admitted per second, over the last one to two seconds.
#[derive(Clone, Debug)]
struct Meter {
    start: Instant,
    current: u32,
    previous: Option<u32>,
}

const WINDOW: Duration = Duration::from_secs(1);

impl Meter {
    fn new(now: Instant) -> Self {
        Self {
            start: now,
            current: 0,
            previous: None,
        }
    }

    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= WINDOW * 2 {
            self.previous = Some(0);
            self.current = 0;
            self.start = now;
        } else if elapsed >= WINDOW {
            self.previous = Some(self.current);
            self.current = 0;
            self.start += WINDOW;
        }
    }

    fn record(&mut self, now: Instant) {
        self.roll(now);
        self.current = self.current.saturating_add(1);
    }

    /// Whether every window measured started at or after `at`.
    fn since(&self, at: Instant) -> bool {
        self.previous.is_some() && at.checked_add(WINDOW).is_some_and(|at| self.start >= at)
    }

    /// `None` until a whole window has been measured.
    fn admitted(&mut self, now: Instant) -> Option<f64> {
        self.roll(now);
        let previous = self.previous?;
        let span = WINDOW + now.saturating_duration_since(self.start);
        Some(f64::from(previous.saturating_add(self.current)) / span.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        c.throttled(at, Some(at), None, true, true);
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
        // Slow start's overshoot: probing follows at once, no plateau.
        let first = t0 + secs(2.0);
        c.throttled(first, Some(first), None, true, true);
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
    fn the_quiet_time_and_the_margin_are_capped() {
        let mut quiet = 0.0;
        for _ in 0..10 {
            quiet = quiet_after(true, true, quiet);
        }
        assert_eq!(quiet, MAX_QUIET.as_secs_f64());
        assert_eq!(quiet_after(true, false, quiet), QUIET.as_secs_f64());
        assert_eq!(quiet_after(false, true, quiet), 0.0);
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
