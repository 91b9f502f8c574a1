//! The hedge budget: each call deposits a fraction of a hedge, each hedge withdraws a whole one;
//! the calls it refused wait in [line](super::line), oldest first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Waker;

use super::line::{Line, Place};

/// Millionths of a hedge: a deposit of 5% is 50,000.
const UNIT: f64 = 1_000_000.0;
/// The most a quiet period saves up: ten hedges, so that a burst after quiet is bounded.
const MAX_SAVED: u64 = 10 * UNIT as u64;

#[derive(Debug)]
pub(crate) struct HedgeBudget {
    /// Millionths of a hedge available.
    saved: AtomicU64,
    /// What a call deposits, in millionths of a hedge.
    deposit: u64,
    /// The calls refused, waiting for the budget to refill.
    line: Arc<Line>,
}

impl HedgeBudget {
    /// A budget of `fraction` hedges per call.
    pub(crate) fn new(fraction: f64) -> Self {
        Self {
            saved: AtomicU64::new(0),
            deposit: (fraction.max(0.0) * UNIT) as u64,
            line: Arc::default(),
        }
    }

    /// A call was made: its share is added, and the calls in line it can now pay for are woken.
    pub(crate) fn deposit(&self) {
        // Sequentially consistent, as the line's length: a call that joins after this deposit
        // read the line empty sees the deposit when it looks again (see `withdraw`).
        let saved = self
            .saved
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |saved| {
                Some(saved.saturating_add(self.deposit).min(MAX_SAVED))
            })
            .map_or(0, |before| {
                before.saturating_add(self.deposit).min(MAX_SAVED)
            });
        let hedges = (saved / UNIT as u64) as usize;
        if hedges > 0 && !self.line.is_empty() {
            self.line.wake_first(hedges);
        }
    }

    /// Whether a hedge may be sent for the call at `place`; withdraws it when so. The calls in
    /// line come first: a call is paid for only when the budget holds a hedge for each call ahead
    /// of it too; refused, it takes a place at the end (woken by `waker` when the budget can pay).
    pub(crate) fn withdraw(&self, place: &mut Option<Place>, waker: &Waker) -> bool {
        if place.is_none() && self.line.is_empty() && self.take(0) {
            return true;
        }
        let waiting = place.get_or_insert_with(|| self.line.join(waker));
        // Looked at again once in line: a deposit made before the call joined woke nobody.
        if self.take(self.line.ahead_of(waiting, waker)) {
            *place = None; // out of line; the one behind is woken to look
            return true;
        }
        false
    }

    /// Whether the call at `place` would be paid for now; brings its waker up to date.
    pub(crate) fn serves(&self, place: &Place, waker: &Waker) -> bool {
        let kept = self.line.ahead_of(place, waker) as u64;
        self.saved.load(Ordering::SeqCst) >= (kept + 1).saturating_mul(UNIT as u64)
    }

    /// Withdraws a hedge if `kept` more remain after it (those of the calls ahead in line).
    fn take(&self, kept: usize) -> bool {
        let kept = (kept as u64).saturating_mul(UNIT as u64);
        self.saved
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |saved| {
                saved.checked_sub(UNIT as u64).filter(|left| *left >= kept)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counted() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (count.clone(), Waker::from(count))
    }

    fn wakes(count: &Count) -> usize {
        count.0.load(Ordering::SeqCst)
    }

    /// Two calls refused by a spent budget, in line in that order; the second's wakes counted.
    struct TwoInLine {
        first: Option<Place>,
        second: Option<Place>,
        second_wakes: Arc<Count>,
        second_waker: Waker,
    }

    fn two_in_line(budget: &HedgeBudget) -> TwoInLine {
        let (second_wakes, second_waker) = counted();
        let (mut first, mut second) = (None, None);
        assert!(!budget.withdraw(&mut first, Waker::noop()));
        assert!(!budget.withdraw(&mut second, &second_waker));
        TwoInLine {
            first,
            second,
            second_wakes,
            second_waker,
        }
    }

    #[test]
    fn twenty_calls_at_five_percent_buy_one_hedge() {
        let budget = HedgeBudget::new(0.05);
        for _ in 0..19 {
            budget.deposit();
        }
        let waker = Waker::noop();
        let mut place = None;
        assert!(!budget.withdraw(&mut place, waker));
        budget.deposit();
        assert!(budget.withdraw(&mut place, waker));
        assert!(place.is_none(), "served, the call left the line");
        assert!(!budget.withdraw(&mut None, waker));
    }

    #[test]
    fn a_quiet_period_saves_at_most_ten_hedges() {
        let budget = HedgeBudget::new(4.0);
        for _ in 0..1000 {
            budget.deposit();
        }
        let hedges =
            std::iter::from_fn(|| budget.withdraw(&mut None, Waker::noop()).then_some(())).count();
        assert_eq!(hedges, 10);
    }

    #[test]
    fn the_calls_refused_are_served_oldest_first_each_woken_when_the_budget_can_pay() {
        let budget = HedgeBudget::new(0.5);
        let (first_wakes, first_waker) = counted();
        let (second_wakes, second_waker) = counted();
        let (mut first, mut second) = (None, None);
        assert!(!budget.withdraw(&mut first, &first_waker));
        assert!(!budget.withdraw(&mut second, &second_waker));
        budget.deposit();
        assert_eq!(
            (wakes(&first_wakes), wakes(&second_wakes)),
            (0, 0),
            "half a hedge"
        );
        budget.deposit();
        assert_eq!((wakes(&first_wakes), wakes(&second_wakes)), (1, 0));
        // The second asks before the first comes back: the hedge is kept for the first.
        assert!(!budget.withdraw(&mut second, &second_waker));
        // A call that never waited joins the end of the line, though the budget could pay.
        assert!(!budget.withdraw(&mut None, Waker::noop()));
        assert!(budget.withdraw(&mut first, &first_waker));
        // First now, the second is woken to look: nothing to pay with yet.
        assert_eq!(wakes(&second_wakes), 1);
        assert!(!budget.withdraw(&mut second, &second_waker));
        budget.deposit();
        budget.deposit();
        assert_eq!(wakes(&second_wakes), 2);
        assert!(budget.withdraw(&mut second, &second_waker));
    }

    #[test]
    fn a_call_that_never_comes_back_for_its_hedge_holds_up_that_hedge_only() {
        let budget = HedgeBudget::new(0.5);
        let mut calls = two_in_line(&budget);
        for _ in 0..4 {
            budget.deposit();
        }
        // The first never asks again; with two hedges saved, one is kept for it.
        assert_eq!(wakes(&calls.second_wakes), 1);
        assert!(budget.withdraw(&mut calls.second, &calls.second_waker));
        assert!(budget.withdraw(&mut calls.first, Waker::noop()));
    }

    #[test]
    fn a_call_that_leaves_the_line_unserved_wakes_the_one_behind_it() {
        let budget = HedgeBudget::new(0.5);
        let mut calls = two_in_line(&budget);
        budget.deposit();
        budget.deposit();
        assert_eq!(wakes(&calls.second_wakes), 0, "the first is served first");
        drop(calls.first.take()); // its attempt answered: no hedge needed
        assert_eq!(wakes(&calls.second_wakes), 1);
        assert!(budget.withdraw(&mut calls.second, &calls.second_waker));
        assert!(budget.line.is_empty());
    }
}
