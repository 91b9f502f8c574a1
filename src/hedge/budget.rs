//! The hedge budget: each call deposits a fraction of a hedge, each hedge withdraws a whole one.

use std::sync::atomic::{AtomicU64, Ordering};

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
}

impl HedgeBudget {
    /// A budget of `fraction` hedges per call.
    pub(crate) fn new(fraction: f64) -> Self {
        Self {
            saved: AtomicU64::new(0),
            deposit: (fraction.max(0.0) * UNIT) as u64,
        }
    }

    /// A call was made.
    pub(crate) fn deposit(&self) {
        let _ = self
            .saved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |saved| {
                Some(saved.saturating_add(self.deposit).min(MAX_SAVED))
            });
    }

    /// Whether a hedge may be sent; withdraws it when so.
    pub(crate) fn withdraw(&self) -> bool {
        self.saved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |saved| {
                saved.checked_sub(UNIT as u64)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_calls_at_five_percent_buy_one_hedge() {
        let budget = HedgeBudget::new(0.05);
        for _ in 0..19 {
            budget.deposit();
        }
        assert!(!budget.withdraw());
        budget.deposit();
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
    }

    #[test]
    fn a_quiet_period_saves_at_most_ten_hedges() {
        let budget = HedgeBudget::new(4.0);
        for _ in 0..1000 {
            budget.deposit();
        }
        let hedges = std::iter::from_fn(|| budget.withdraw().then_some(())).count();
        assert_eq!(hedges, 10);
    }
}
