//! After each attempt: retry after which wait, or stop and why. Every limit of the policy is applied here.

use std::time::Duration;

use rand::rngs::SmallRng;
use tokio::time::Instant;

use crate::classify::{Decision, RetryClass};
use crate::report::history::StopReason;
use crate::shared::budget::{RetryBudget, Withdrawal};
use crate::wait::backoff::Backoff;
use crate::wait::retry_after::RetryAfterMode;
use crate::wait::{Wait, WaitReason};

/// What the planner reads of a policy. [`RetryPolicy`](crate::RetryPolicy) implements it: the policy
/// depends on the decision, never the other way round.
pub(crate) trait Limits {
    /// Attempts in all, the first included, when the latest outcome is of `class`.
    fn max_attempts(&self, class: RetryClass) -> u32;
    /// Retries of `class` in one call, the other class's not counted.
    fn max_retries(&self, class: RetryClass) -> u32;
    /// The delays between retries of `class`.
    fn backoff(&self, class: RetryClass) -> &Backoff;
    /// The longest delay a response may ask for and still be waited for.
    fn retry_after_cap(&self) -> Duration;
    /// How a delay the response asked for combines with the backoff.
    fn retry_after_mode(&self) -> &RetryAfterMode;
    /// The retry budget shared with other calls, if any.
    fn budget(&self) -> Option<&RetryBudget>;
    /// A random source for one call, never shared with another.
    fn rng(&self) -> SmallRng;
}

/// A dense index for per-class counters.
fn index(class: RetryClass) -> usize {
    match class {
        RetryClass::Throttling => 0,
        RetryClass::Transient => 1,
    }
}

/// The delay a response asked for, and what asked for it (`Retry-After` or a spent rate limit).
pub(crate) type Asked = (Duration, WaitReason);

/// What to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Retry(Wait),
    Stop(StopReason),
}

/// The per-call state every attempt needs: attempts so far, and when the whole call must end.
pub(crate) struct Planner {
    attempts: u32,
    deadline: Option<Instant>,
}

/// The per-call state only retries need: each class's retries and previous delay, the random source,
/// and the budget withdrawn for the retry planned. Kept apart so that a call whose first attempt
/// needs no retry neither makes nor moves it.
#[derive(Default)]
pub(crate) struct Schedule {
    retries: [u32; 2],
    previous_delay: [Option<Duration>; 2],
    rng: Option<SmallRng>,
    /// The budget withdrawn for the retry planned but not sent yet; given back if it never is.
    withdrawal: Option<Withdrawal>,
}

impl Schedule {
    /// The planned retry will not be sent: its budget withdrawal is given back.
    pub(crate) fn cancel_retry(&mut self) {
        self.withdrawal = None;
    }
}

impl Planner {
    /// A call that has made no attempt yet; `deadline` is when the whole call must end.
    pub(crate) fn new(deadline: Option<Instant>) -> Self {
        Self {
            attempts: 0,
            deadline,
        }
    }

    /// Attempts made so far, the one in flight included.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// When the whole call must end, if it has a deadline.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Counts the attempt about to be made; a retry's budget withdrawal (in `schedule`) is spent now.
    #[inline]
    pub(crate) fn start_attempt(&mut self, schedule: Option<&mut Schedule>) {
        self.attempts = self.attempts.saturating_add(1);
        if let Some(withdrawal) = schedule.and_then(|schedule| schedule.withdrawal.take()) {
            withdrawal.spend();
        }
    }

    /// Why the call stops after an outcome classified `decision`, when that asks for no retry.
    pub(crate) fn stops(decision: Decision) -> Option<StopReason> {
        match decision {
            Decision::Retry(_) => None,
            Decision::Unsafe => Some(StopReason::NotIdempotent),
            Decision::Done => Some(StopReason::Finished),
        }
    }

    /// Decides what follows an attempt that was classified `decision` and whose response
    /// `asked` for a delay; `paced` when a throttle paces the retry at the rate its scope admits.
    /// `schedule` is the call's retry state, made when the first retry is asked for (a call whose
    /// outcomes ask for none needs none: see [`Planner::stops`]).
    pub(crate) fn next(
        &self,
        schedule: &mut Schedule,
        policy: &impl Limits,
        decision: Decision,
        asked: Option<Asked>,
        paced: bool,
        now: impl FnOnce() -> Instant,
    ) -> Next {
        let class = match decision {
            Decision::Retry(class) => class,
            other => return Next::Stop(Self::stops(other).unwrap_or(StopReason::Finished)),
        };
        let i = index(class);
        if self.attempts >= policy.max_attempts(class)
            || schedule.retries[i] >= policy.max_retries(class)
        {
            return Next::Stop(StopReason::AttemptsExhausted);
        }
        if asked.is_some_and(|(delay, _)| delay > policy.retry_after_cap()) {
            return Next::Stop(StopReason::RetryAfterTooLong);
        }
        // Seeded on the first draw: a backoff without jitter, or a zero one, never makes one.
        let slot = &mut schedule.rng;
        let rng = move || {
            let slot = slot; // moved: the closure runs once and hands the generator out
            slot.get_or_insert_with(|| policy.rng())
        };
        let backoff =
            policy
                .backoff(class)
                .delay(schedule.retries[i], schedule.previous_delay[i], rng);
        let wait = policy.retry_after_mode().wait(asked, backoff);
        // The clock is read only for a deadline.
        if let Some(deadline) = self.deadline {
            let ends = now().checked_add(wait.duration);
            if ends.is_none_or(|ends| ends >= deadline) {
                return Next::Stop(StopReason::Deadline);
            }
        }
        // Last, so that a retry refused for any other reason costs the budget nothing.
        // A throttling retry that a throttle paces leaves at the rate its scope admits: it cannot
        // multiply the load, which is what the budget is for. Any other draws from the budget.
        let paced = class == RetryClass::Throttling && paced;
        if let Some(budget) = policy.budget().filter(|_| !paced) {
            match budget.withdraw(class) {
                Some(withdrawal) => schedule.withdrawal = Some(withdrawal),
                None => return Next::Stop(StopReason::BudgetExhausted),
            }
        }
        schedule.retries[i] += 1;
        schedule.previous_delay[i] = Some(backoff);
        Next::Retry(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::RetryClass;
    use crate::policy::RetryPolicy;
    use crate::shared::budget::RetryBudget;
    use crate::wait::backoff::{Backoff, Jitter};

    const RETRY: Decision = Decision::Retry(RetryClass::Transient);
    const THROTTLE: Decision = Decision::Retry(RetryClass::Throttling);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn exact(policy: RetryPolicy) -> RetryPolicy {
        policy.backoff(Backoff::exponential(secs(1)).jitter(Jitter::None))
    }

    /// A call's planner and retry state.
    struct Plan {
        planner: Planner,
        schedule: Schedule,
    }

    impl Plan {
        fn start_attempt(&mut self) {
            self.planner.start_attempt(Some(&mut self.schedule));
        }
    }

    /// A planner whose first attempt is in flight.
    fn started(deadline: Option<Instant>) -> Plan {
        let mut plan = Plan {
            planner: Planner::new(deadline),
            schedule: Schedule::default(),
        };
        plan.start_attempt();
        plan
    }

    fn next(
        plan: &mut Plan,
        policy: &RetryPolicy,
        decision: Decision,
        asked: Option<Asked>,
        now: Instant,
    ) -> Next {
        plan.planner
            .next(&mut plan.schedule, policy, decision, asked, false, || now)
    }

    fn waits(duration: Duration, reason: WaitReason) -> Next {
        Next::Retry(Wait { duration, reason })
    }

    #[test]
    fn stops_at_the_attempt_limit() {
        let policy = exact(RetryPolicy::new().max_attempts(3));
        let now = Instant::now();
        let mut plan = started(None);
        assert_eq!(
            next(&mut plan, &policy, RETRY, None, now),
            waits(secs(1), WaitReason::Backoff)
        );
        plan.start_attempt();
        assert_eq!(
            next(&mut plan, &policy, RETRY, None, now),
            waits(secs(2), WaitReason::Backoff)
        );
        plan.start_attempt();
        assert_eq!(
            next(&mut plan, &policy, RETRY, None, now),
            Next::Stop(StopReason::AttemptsExhausted)
        );
    }

    #[test]
    fn each_class_has_its_own_backoff_and_attempt_limit() {
        let policy = RetryPolicy::new()
            .backoff_for(
                RetryClass::Throttling,
                Backoff::exponential(secs(3)).jitter(Jitter::None),
            )
            .backoff_for(
                RetryClass::Transient,
                Backoff::exponential(secs(1)).jitter(Jitter::None),
            )
            .max_attempts_for(RetryClass::Throttling, 5)
            .max_attempts_for(RetryClass::Transient, 3);
        let now = Instant::now();
        let mut plan = started(None);
        assert_eq!(
            next(&mut plan, &policy, RETRY, None, now),
            waits(secs(1), WaitReason::Backoff)
        );
        plan.start_attempt();
        // The first throttling retry starts its own schedule.
        assert_eq!(
            next(&mut plan, &policy, THROTTLE, None, now),
            waits(secs(3), WaitReason::Backoff)
        );
        plan.start_attempt();
        // Three attempts made: the transient limit is reached, the throttling one is not.
        assert_eq!(
            next(&mut plan, &policy, RETRY, None, now),
            Next::Stop(StopReason::AttemptsExhausted)
        );
        assert_eq!(
            next(&mut plan, &policy, THROTTLE, None, now),
            waits(secs(6), WaitReason::Backoff)
        );
        plan.start_attempt();
        assert_eq!(
            next(&mut plan, &policy, THROTTLE, None, now),
            waits(secs(12), WaitReason::Backoff)
        );
        plan.start_attempt();
        assert_eq!(
            next(&mut plan, &policy, THROTTLE, None, now),
            Next::Stop(StopReason::AttemptsExhausted)
        );
    }

    #[test]
    fn a_class_retry_limit_counts_only_that_class_and_keeps_the_other_schedule() {
        let policy = exact(RetryPolicy::new().max_attempts(u32::MAX))
            .backoff_for(
                RetryClass::Throttling,
                Backoff::constant(secs(7)).jitter(Jitter::None),
            )
            .max_retries_for(RetryClass::Throttling, 1)
            .max_retries_for(RetryClass::Transient, 2);
        let now = Instant::now();
        let mut plan = started(None);
        let mut step = |decision| {
            let next = next(&mut plan, &policy, decision, None, now);
            plan.start_attempt();
            next
        };
        assert_eq!(step(RETRY), waits(secs(1), WaitReason::Backoff));
        assert_eq!(step(THROTTLE), waits(secs(7), WaitReason::Backoff));
        // The throttling retry neither advanced nor spent the transient ones.
        assert_eq!(step(RETRY), waits(secs(2), WaitReason::Backoff));
        assert_eq!(step(THROTTLE), Next::Stop(StopReason::AttemptsExhausted));
        assert_eq!(step(RETRY), Next::Stop(StopReason::AttemptsExhausted));
    }

    #[test]
    fn in_exact_mode_what_the_server_asked_replaces_the_backoff() {
        use crate::wait::retry_after::RetryAfterMode;
        let policy = exact(RetryPolicy::new()).retry_after_mode(RetryAfterMode::Exact);
        let now = Instant::now();
        let mut plan = started(None);
        assert_eq!(
            next(&mut plan, &policy, THROTTLE, None, now),
            waits(secs(1), WaitReason::Backoff)
        );
        plan.start_attempt();
        assert_eq!(
            next(&mut plan, &policy, THROTTLE, None, now),
            waits(secs(2), WaitReason::Backoff)
        );
        plan.start_attempt();
        // The backoff would be 4 s; the server asked for 1 s, and 1 s it is.
        let asked = Some((secs(1), WaitReason::RetryAfter));
        assert_eq!(
            next(&mut plan, &policy, THROTTLE, asked, now),
            waits(secs(1), WaitReason::RetryAfter)
        );
        // The cap still holds.
        let mut plan = started(None);
        let too_long = Some((secs(61), WaitReason::RetryAfter));
        assert_eq!(
            next(&mut plan, &policy, THROTTLE, too_long, now),
            Next::Stop(StopReason::RetryAfterTooLong)
        );
    }

    #[test]
    fn a_generator_is_made_only_for_a_draw() {
        // Throttling waits have no jitter, transient ones do; one seeded sequence per generator made.
        let policy = || {
            RetryPolicy::new()
                .no_retry_budget()
                .seed(3)
                .backoff_for(
                    RetryClass::Throttling,
                    Backoff::constant(secs(2)).jitter(Jitter::None),
                )
                .backoff_for(RetryClass::Transient, Backoff::constant(secs(60)))
        };
        let now = Instant::now();
        let first_draw = next(&mut started(None), &policy(), RETRY, None, now);
        let shared = policy();
        let mut unjittered = started(None);
        let wait = next(&mut unjittered, &shared, THROTTLE, None, now);
        assert_eq!(wait, waits(secs(2), WaitReason::Backoff));
        assert!(
            unjittered.schedule.rng.is_none(),
            "nothing drawn, no generator"
        );
        // The call that drew nothing took no sequence: the next call that draws gets the first.
        assert_eq!(
            next(&mut started(None), &shared, RETRY, None, now),
            first_draw
        );
    }

    #[test]
    fn the_default_throttling_backoff_waits_at_least_half_a_second_first() {
        let policy = RetryPolicy::new().no_retry_budget().seed(1);
        let now = Instant::now();
        for _ in 0..200 {
            let mut plan = started(None);
            let Next::Retry(wait) = next(&mut plan, &policy, THROTTLE, None, now) else {
                panic!("a first 429 is retried");
            };
            assert!(wait.duration >= Duration::from_millis(500) && wait.duration <= secs(1));
        }
    }

    #[test]
    fn what_the_server_asked_is_a_floor_and_has_a_cap() {
        let policy = exact(RetryPolicy::new().max_retry_after(secs(10)));
        let now = Instant::now();
        let mut plan = started(None);
        let retry = next(
            &mut plan,
            &policy,
            RETRY,
            Some((secs(5), WaitReason::RetryAfter)),
            now,
        );
        assert_eq!(retry, waits(secs(5), WaitReason::RetryAfter));
        let mut plan = started(None);
        let reset = next(
            &mut plan,
            &policy,
            RETRY,
            Some((secs(7), WaitReason::RateLimitReset)),
            now,
        );
        assert_eq!(reset, waits(secs(7), WaitReason::RateLimitReset));
        let mut plan = started(None);
        let shorter = next(
            &mut plan,
            &policy,
            RETRY,
            Some((Duration::ZERO, WaitReason::RetryAfter)),
            now,
        );
        assert_eq!(shorter, waits(secs(1), WaitReason::Backoff));
        let mut plan = started(None);
        assert_eq!(
            next(
                &mut plan,
                &policy,
                RETRY,
                Some((secs(11), WaitReason::RateLimitReset)),
                now
            ),
            Next::Stop(StopReason::RetryAfterTooLong)
        );
    }

    #[test]
    fn no_wait_ends_past_the_deadline() {
        let policy = exact(RetryPolicy::new());
        let now = Instant::now();
        let mut plan = started(Some(now + secs(3)));
        assert!(matches!(
            next(&mut plan, &policy, RETRY, None, now),
            Next::Retry(_)
        ));
        plan.start_attempt();
        // The next backoff is 2 s: from now + 1 s it would end exactly at the deadline.
        assert_eq!(
            next(&mut plan, &policy, RETRY, None, now + secs(1)),
            Next::Stop(StopReason::Deadline)
        );
        let mut plan = started(Some(now + secs(3)));
        assert_eq!(
            next(
                &mut plan,
                &policy,
                RETRY,
                Some((secs(4), WaitReason::RetryAfter)),
                now
            ),
            Next::Stop(StopReason::Deadline)
        );
    }

    #[test]
    fn final_and_unsafe_outcomes_stop_at_once() {
        let policy = RetryPolicy::new();
        let mut plan = started(None);
        let now = Instant::now();
        assert_eq!(
            next(&mut plan, &policy, Decision::Done, None, now),
            Next::Stop(StopReason::Finished)
        );
        assert_eq!(
            next(&mut plan, &policy, Decision::Unsafe, None, now),
            Next::Stop(StopReason::NotIdempotent)
        );
    }

    #[test]
    fn the_budget_is_asked_last_and_can_refuse() {
        let budget = RetryBudget::builder().floor(1).ratio(0.0).build();
        let policy = exact(RetryPolicy::new().retry_budget(budget.clone()));
        let now = Instant::now();
        // Refused by the deadline first: the budget keeps its retry.
        let mut plan = started(Some(now + secs(1)));
        assert_eq!(
            next(&mut plan, &policy, RETRY, None, now),
            Next::Stop(StopReason::Deadline)
        );
        assert_eq!(budget.available(), 1.0);
        let mut plan = started(None);
        assert!(matches!(
            next(&mut plan, &policy, RETRY, None, now),
            Next::Retry(_)
        ));
        let mut plan = started(None);
        assert_eq!(
            next(&mut plan, &policy, RETRY, None, now),
            Next::Stop(StopReason::BudgetExhausted)
        );
    }
}
