//! Interleaved rounds: every contender runs one batch per round, in an order that rotates, and ratios are
//! taken between batches of the same round. On a shared machine, load that comes and goes
//! during a run shifts a sequential benchmark's figures one contender at a time; a ratio taken within a
//! round sees both sides under the same load.

use std::time::Duration;

/// A contender for [`interleave`]: `run` performs one batch of `units` requests and returns its time.
pub struct Contender<'a> {
    /// The benchmark id.
    pub name: &'static str,
    /// Requests per batch; batches may differ in size, figures are per request.
    pub units: u64,
    /// Runs one batch, returning the time it took.
    pub run: Box<dyn FnMut() -> Duration + 'a>,
}

impl<'a> Contender<'a> {
    /// A contender running `units` requests per batch with `run`.
    pub fn new(name: &'static str, units: u64, run: impl FnMut() -> Duration + 'a) -> Self {
        Self {
            name,
            units,
            run: Box::new(run),
        }
    }
}

/// One contender's time per request in every round.
#[derive(Clone, Debug, PartialEq)]
pub struct Paired {
    /// The benchmark id.
    pub contender: String,
    /// Nanoseconds per request, round by round.
    pub per_round: Vec<f64>,
}

/// The distribution over rounds of one contender's time divided by another's in the same round.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratio {
    /// The median.
    pub median: f64,
    /// The first quartile.
    pub q1: f64,
    /// The third quartile.
    pub q3: f64,
}

impl Paired {
    /// The median time per request, in nanoseconds.
    pub fn ns(&self) -> f64 {
        quantile(&mut self.per_round.clone(), 0.5)
    }

    /// This contender's time per request over `other`'s, round by round.
    pub fn ratio_to(&self, other: &Paired) -> Ratio {
        let mut ratios: Vec<f64> = self
            .per_round
            .iter()
            .zip(&other.per_round)
            .map(|(own, theirs)| own / theirs)
            .collect();
        Ratio {
            median: quantile(&mut ratios, 0.5),
            q1: quantile(&mut ratios, 0.25),
            q3: quantile(&mut ratios, 0.75),
        }
    }
}

/// Whether the benchmark runs in criterion's quick test mode (`cargo bench -- --test`, as CI runs it):
/// every check is still made, but the figures are not worth reading.
pub fn quick_test_mode() -> bool {
    std::env::args().any(|arg| arg == "--test")
}

/// `rounds`, or a single round in [quick test mode](quick_test_mode).
pub fn rounds(rounds: usize) -> usize {
    if quick_test_mode() {
        1
    } else {
        rounds
    }
}

/// Runs `rounds` rounds over `contenders`.
pub fn interleave(rounds: usize, contenders: &mut [Contender<'_>]) -> Vec<Paired> {
    let n = contenders.len();
    let mut per_round = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let contender = &mut contenders[i];
            let time = (contender.run)();
            per_round[i].push(time.as_nanos() as f64 / contender.units as f64);
        }
    }
    contenders
        .iter()
        .zip(per_round)
        .map(|(contender, per_round)| Paired {
            contender: contender.name.to_string(),
            per_round,
        })
        .collect()
}

/// The `q` quantile of `values` (nearest rank); NaN when empty.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() - 1) as f64 * q).round() as usize;
    values[rank]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn ratios_are_taken_within_a_round() {
        // The load doubles every round; the contender always takes 1.5 times the baseline per request.
        let calls = Cell::new(0u32);
        let under_load = |ms: f64| {
            let round = calls.get() / 2;
            calls.set(calls.get() + 1);
            Duration::from_secs_f64(ms * f64::from(1 << round) / 1000.0)
        };
        let mut contenders = [
            Contender::new("base", 10, || under_load(10.0)),
            Contender::new("other", 20, || under_load(30.0)),
        ];
        let results = interleave(5, &mut contenders);
        let ratio = results[1].ratio_to(&results[0]);
        assert!((ratio.median - 1.5).abs() < 1e-9, "{results:?}");
        assert!((ratio.q1 - 1.5).abs() < 1e-9);
        assert!((ratio.q3 - 1.5).abs() < 1e-9);
        assert_eq!(results[0].ratio_to(&results[0]).median, 1.0);
        // The median round (load x4) gives 1 ms x 4 per request for the baseline, 1.5 ms x 4 for the other.
        assert!((results[0].ns() - 4e6).abs() < 1.0);
        assert!((results[1].ns() - 6e6).abs() < 1.0);
    }

    #[test]
    fn the_order_rotates_every_round() {
        let order = std::cell::RefCell::new(Vec::new());
        let mut contenders = [
            Contender::new("a", 1, || {
                order.borrow_mut().push('a');
                Duration::from_nanos(1)
            }),
            Contender::new("b", 1, || {
                order.borrow_mut().push('b');
                Duration::from_nanos(1)
            }),
            Contender::new("c", 1, || {
                order.borrow_mut().push('c');
                Duration::from_nanos(1)
            }),
        ];
        interleave(3, &mut contenders);
        drop(contenders);
        assert_eq!(order.into_inner().iter().collect::<String>(), "abcbcacab");
    }

    #[test]
    fn quantiles_pick_the_nearest_rank() {
        let mut values = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(&mut values, 0.5), 3.0);
        assert_eq!(quantile(&mut values, 0.25), 2.0);
        assert_eq!(quantile(&mut values, 0.75), 4.0);
        assert!(quantile(&mut [], 0.5).is_nan());
    }
}
