//! The rate law: how fast the throttle sends to one scope, learned from its answers. One law for
//! a process and for a fleet that shares a [store](crate::store): each applies it once per scope.
//!
//! A scope is engaged by a throttling answer (a 429, gRPC's `RESOURCE_EXHAUSTED`) or, with
//! [`from_first_request`](crate::throttle::Throttle::from_first_request), by its first request. Then:
//!
//! | phase | rate | ends |
//! |---|---|---|
//! | engaged while sending at a measured rate | 1.1 x that rate, probing | at the next throttling answer |
//! | slow start (unmeasured, under 2 r/s, or from the first request) | doubles every 500 ms from 2 r/s | at the first throttling answer |
//! | cut | 0.95 x the rate sent at (or the rate admitted, when under 0.8 x it); never below the rate admitted | at once: probing |
//! | probing | +1% of the ceiling per second, doubling every 10 s | at the next throttling answer |
//! | plateau (after an overshoot while probing, or slow start's that held the scope) | 0.99 x the ceiling (0.95 x after slow start's); the margin doubles, to 5%, per overshoot there | after 30 s quiet, doubling per overshoot near the ceiling, to 240 s; probing past it a quarter as fast |
//! | refuted ceiling (overshoot at no more than the last cut's rate) | 0.9 x the rate sent at, squared for each in a row (0.81, 0.66, ...) | at once: probing |
//! | exact (rate-limit headers with quota left) | remaining over reset | at the reset: probing |
//!
//! | rule | what |
//! |---|---|
//! | sparse | bare 429s (no time to come back) under 5% of the answers since the last cut, once there are 10, cut nothing: a quota of the refused requests' own; a limit refuses a growing share, and is cut |
//! | one overshoot | answers to requests sent before the last cut cut nothing more |
//! | rate admitted | answers admitted per second over the last 1 to 2 s of time the scope could send (a server's hold excluded); for an answer that held the scope, the intervals between them (one fewer): never above the rate they came at |
//! | floor | a cut never leaves the rate below the rate admitted: what it admitted, it admits |
//! | growth | only while the rate holds requests back: a hold, or time nobody waited, does not count |
//!
//! The rate ranges from one request every 20 s to 10⁶ per second. The fleet applies the same
//! law to the answers its processes report: its rate admitted is the fleet's, its sparse rule
//! counts every process's answers. One input is each process's own: the rate a scope was being
//! sent at when engaged is measured where the requests leave, so the fleet starts from the rate
//! of the process whose answer engaged it (a lower bound of the fleet's).
//!
//! AWS's adaptive retry mode (a CUBIC token bucket) and gRPC's retry throttling were the models;
//! unlike AWS's, this law is safe for many tenants on one server.

// Times are seconds on the caller's clock (tokio's for a process, the store's for a fleet); the
// script `store/slots.lua` is this module's copy for Redis, checked against it by the twin test.

use std::time::Duration;

/// How far above the rate it was sent at a scope engaged by a throttling answer starts.
pub(crate) const ENGAGE_HEADROOM: f64 = 1.1;
/// Bare throttling answers (no time to come back) under this share of the answers since the
/// last cut cut nothing...
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
/// Only an admitted rate under this share of the rate sent at is a burst allowance's gap: the
/// cut is then from the rate admitted.
pub(crate) const CLEAR_GAP: f64 = 0.8;
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
/// The rate admitted is measured over windows this long, in seconds: the last one or two.
pub(crate) const WINDOW: f64 = 1.0;

/// The probing rate `t` seconds after a cut to `base` under `ceiling`: a climb at [`PROBE`] to the
/// plateau `margin` below the ceiling (never below `base`: the rate admitted may floor the cut
/// above it), held until `quiet` seconds (none when 0), then probing at `probe` past it.
pub(crate) fn probing(base: f64, ceiling: f64, probe: f64, quiet: f64, margin: f64, t: f64) -> f64 {
    let grown = |speed: f64, t: f64| speed * ceiling * t * (t / ACCELERATION).exp2();
    if quiet <= 0.0 {
        return base + grown(probe, t);
    }
    let plateau = ((1.0 - margin) * ceiling).max(base);
    let climbed = (base + grown(PROBE, t.min(quiet))).min(plateau);
    match t > quiet {
        true => climbed + grown(probe, t - quiet),
        false => climbed,
    }
}

/// The quiet time after a throttling answer: doubled for an overshoot near the same ceiling while
/// probing, else [`QUIET`]. After slow start's overshoot, none when the answer was bare: probing
/// finds the limit at the cost of one more refused request. When the answer `held` the scope (a
/// time to come back), each overshoot costs that time for everyone in it, so the rate stays under
/// the ceiling slow start found for the quiet time, as after a probe's.
pub(crate) fn quiet_after(probing: bool, near: bool, quiet: f64, held: bool) -> f64 {
    match (probing, near && quiet > 0.0) {
        (false, _) if !held => 0.0,
        (true, true) => (2.0 * quiet).min(MAX_QUIET.as_secs_f64()),
        _ => QUIET.as_secs_f64(),
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

/// The rate a throttling answer is cut from: the rate the refused request was sent at, or the rate
/// the scope was measured to admit (`None`: not measured) when it is clearly lower, which a
/// burst allowance hides.
pub(crate) fn cut_from(sending: f64, admitted: Option<f64>) -> f64 {
    match admitted {
        Some(admitted) if admitted < CLEAR_GAP * sending => admitted.max(MIN_RATE),
        _ => sending,
    }
}

/// The rate law's state apart from its clock.
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
    /// probing phase (`probing`) or another, with `at` the rate to cut from ([`cut_from`]): the
    /// cut to [`BETA`] of it, the new ceiling, and the probing speed, quiet time and margin that
    /// follow. Sent at no more than the last cut's rate ([`refutes`](Self::refutes)), the cut is
    /// deeper ([`Law::refuted_beta`]), and the old ceiling counts for nothing. Never below
    /// `admitted`, the rate the scope was measured to admit. `held`: the answer held the scope.
    pub(crate) fn cut(
        &mut self,
        at: f64,
        sending: f64,
        probing: bool,
        t: f64,
        admitted: Option<f64>,
        held: bool,
    ) {
        let refuted = probing && self.refutes(sending) && at >= sending;
        let near =
            !refuted && self.ceiling > 0.0 && (at - self.ceiling).abs() <= 0.1 * self.ceiling;
        let plateau = !refuted && probing && self.quiet > 0.0 && t < self.quiet;
        // Slow start's overshoot is up to one interval's growth (15% at 10 r/s) above the limit:
        // when it held the scope, the plateau is where the cut leaves the rate.
        self.margin = match !probing && held {
            true => MAX_MARGIN,
            false => margin_after(plateau, self.margin),
        };
        self.quiet = quiet_after(probing, near, self.quiet, held);
        self.probe = if near {
            (self.probe / 4.0).max(MIN_PROBE)
        } else {
            PROBE
        };
        let beta = if refuted { self.refuted_beta() } else { BETA };
        self.ceiling = at;
        self.base = (at * beta).max(MIN_RATE);
        if let Some(admitted) = admitted {
            self.base = self.base.max(admitted.min(MAX_RATE));
        }
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

    /// Engaged by a throttling answer while requests were sent at `sending` per second (`None`:
    /// not measured): probing from [`ENGAGE_HEADROOM`] above it, so that the load it was carrying
    /// is not queued on one answer's word; a limit at that rate refuses densely, and is cut at
    /// once. `false` (slow start stays) when unmeasured or under [`START_RATE`].
    pub(crate) fn engage(&mut self, sending: Option<f64>) -> bool {
        let Some(sending) = sending.filter(|rate| *rate > START_RATE) else {
            return false;
        };
        let sending = sending.min(MAX_RATE);
        self.cut(sending, sending, false, 0.0, None, false);
        self.base = sending * ENGAGE_HEADROOM;
        true
    }
}

/// Answers since the last cut, for the sparse rule.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Tally {
    pub(crate) admitted: u32,
    pub(crate) refused: u32,
}

impl Tally {
    /// `n` answers admitted.
    pub(crate) fn admit(&mut self, n: u32) {
        self.admitted = self.admitted.saturating_add(n);
    }

    /// A throttling answer, `held` when it gave a time to come back: whether it cuts. Bare
    /// refusals under [`SPARSE`] of the answers since the last cut (once there are
    /// [`SPARSE_AFTER`]) are about the requests they refused (a quota per user, per endpoint),
    /// not the scope's rate: a cut would not stop them, only slow everyone else. A limit the scope
    /// overshoots refuses a growing share. A refusal with a time to come back holds the scope
    /// for each overshoot, so it cuts at once.
    pub(crate) fn refuse(&mut self, held: bool) -> bool {
        let answers = self.admitted.saturating_add(self.refused);
        self.refused = self.refused.saturating_add(1);
        held || answers < SPARSE_AFTER
            || f64::from(self.refused) >= SPARSE * f64::from(answers.saturating_add(1))
    }
}

/// Answers admitted per second over the last one to two [`WINDOW`]s of time the scope could send.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Meter {
    /// When the current window started.
    pub(crate) start: f64,
    pub(crate) current: u32,
    /// The window before, `None` until one has been measured.
    pub(crate) previous: Option<u32>,
}

impl Meter {
    pub(crate) fn new(now: f64) -> Self {
        Self {
            start: now,
            current: 0,
            previous: None,
        }
    }

    fn roll(&mut self, now: f64) {
        let elapsed = now - self.start;
        if elapsed >= 2.0 * WINDOW {
            self.previous = Some(0);
            self.current = 0;
            self.start = now;
        } else if elapsed >= WINDOW {
            self.previous = Some(self.current);
            self.current = 0;
            self.start += WINDOW;
        }
    }

    /// `n` answers admitted at `now`.
    pub(crate) fn record(&mut self, now: f64, n: u32) {
        self.roll(now);
        self.current = self.current.saturating_add(n);
    }

    /// Whether every window measured started at or after `at`.
    pub(crate) fn since(&self, at: f64) -> bool {
        self.previous.is_some() && self.start >= at + WINDOW
    }

    /// `None` until a whole window has been measured. For a throttling answer that `held` the
    /// scope, the intervals between the answers are counted (one fewer than the answers): `n`
    /// answers in a span cover at least `n - 1` of a limit's intervals, so that reading never
    /// exceeds the rate they came at, wherever the window's edges fall. Counting answers reads up
    /// to one answer per span high (10 r/s for 9.74 sent), and the floor then held the cut on the
    /// limit, where each overshoot cost a hold of everyone. A bare refusal costs one retry: the
    /// answers' count lets the rate sit at the limit.
    pub(crate) fn admitted(&mut self, now: f64, held: bool) -> Option<f64> {
        self.roll(now);
        let previous = self.previous?;
        let span = WINDOW + (now - self.start).max(0.0);
        let answers = previous.saturating_add(self.current);
        let counted = if held {
            answers.saturating_sub(1)
        } else {
            answers
        };
        Some(f64::from(counted) / span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A limit without burst admits answers at least its interval apart: whatever the windows'
    /// edges, the rate admitted for an answer that held the scope never reads above the rate the
    /// answers came at, or the floor
    /// would hold a cut at (or over) the limit. Found in the fleet example: 20 answers in a span
    /// of 2 s read 10 r/s from a scope sent at 9.74 r/s, and the plateau sat on the limit.
    #[test]
    fn the_rate_admitted_never_reads_above_the_rate_the_answers_came_at() {
        for rate in [0.5, 3.0, 9.74, 10.0, 47.0, 300.0] {
            let interval = 1.0 / rate;
            let mut meter = Meter::new(0.0);
            let mut next = 0.013;
            let mut lowest = f64::MAX;
            for step in 0..20_000 {
                let now = f64::from(step) * 0.000_5;
                while next <= now {
                    meter.record(next, 1);
                    next += interval;
                }
                if let Some(admitted) = meter.admitted(now, true).filter(|_| now > 3.0) {
                    assert!(
                        admitted <= rate * (1.0 + 1e-9),
                        "{admitted} at {now} s, sent at {rate}"
                    );
                    lowest = lowest.min(admitted);
                }
            }
            // Still a measure: two answers' worth under the rate at most, over the shortest span.
            assert!(lowest >= rate - 2.0 - 1e-9, "{lowest} for {rate}");
        }
    }
}
