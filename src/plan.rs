//! After each attempt: retry after which wait, or stop and why. Every limit of the policy is applied here.

use std::time::Duration;

use rand::rngs::SmallRng;
use tokio::time::Instant;

use crate::classify::Decision;
use crate::history::{StopReason, Wait, WaitReason};
use crate::policy::RetryPolicy;

/// What to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Retry(Wait),
    Stop(StopReason),
}

/// The per-call state the limits need: attempts so far, the previous delay and the random source.
pub(crate) struct Planner {
    attempts: u32,
    previous_delay: Option<Duration>,
    rng: Option<SmallRng>,
    deadline: Option<Instant>,
}

impl Planner {
    /// A call whose first attempt is about to be made; `deadline` is when the whole call must end.
    pub(crate) fn new(deadline: Option<Instant>) -> Self {
        Self {
            attempts: 1,
            previous_delay: None,
            rng: None,
            deadline,
        }
    }

    /// Attempts made so far, the one in flight included.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Counts the attempt about to be made.
    pub(crate) fn start_attempt(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
    }

    /// Decides what follows an attempt that was classified `decision` and asked for `retry_after`.
    pub(crate) fn next(
        &mut self,
        policy: &RetryPolicy,
        decision: Decision,
        retry_after: Option<Duration>,
        now: Instant,
    ) -> Next {
        match decision {
            Decision::Retry(_) => {}
            Decision::Unsafe => return Next::Stop(StopReason::NotIdempotent),
            Decision::Done => return Next::Stop(StopReason::Finished),
        }
        if self.attempts >= policy.max_attempts {
            return Next::Stop(StopReason::AttemptsExhausted);
        }
        if retry_after.is_some_and(|asked| asked > policy.max_retry_after) {
            return Next::Stop(StopReason::RetryAfterTooLong);
        }
        let rng = self.rng.get_or_insert_with(|| policy.rng());
        let backoff = policy
            .backoff
            .delay(self.attempts - 1, self.previous_delay, rng);
        self.previous_delay = Some(backoff);
        // Retry-After is a floor under the backoff, never a replacement for it.
        let wait = match retry_after {
            Some(asked) if asked > backoff => Wait {
                duration: asked,
                reason: WaitReason::RetryAfter,
            },
            _ => Wait {
                duration: backoff,
                reason: WaitReason::Backoff,
            },
        };
        if let Some(deadline) = self.deadline {
            let ends = now.checked_add(wait.duration);
            if ends.is_none_or(|ends| ends >= deadline) {
                return Next::Stop(StopReason::Deadline);
            }
        }
        Next::Retry(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::Backoff;
    use crate::classify::RetryClass;

    const RETRY: Decision = Decision::Retry(RetryClass::Transient);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn exact(policy: RetryPolicy) -> RetryPolicy {
        policy.backoff(Backoff::exponential(secs(1)).jitter(crate::backoff::Jitter::None))
    }

    #[test]
    fn stops_at_the_attempt_limit() {
        let policy = exact(RetryPolicy::new().max_attempts(3));
        let now = Instant::now();
        let mut plan = Planner::new(None);
        assert!(
            matches!(plan.next(&policy, RETRY, None, now), Next::Retry(w) if w.duration == secs(1))
        );
        plan.start_attempt();
        assert!(
            matches!(plan.next(&policy, RETRY, None, now), Next::Retry(w) if w.duration == secs(2))
        );
        plan.start_attempt();
        assert_eq!(
            plan.next(&policy, RETRY, None, now),
            Next::Stop(StopReason::AttemptsExhausted)
        );
    }

    #[test]
    fn retry_after_is_a_floor_and_has_a_cap() {
        let policy = exact(RetryPolicy::new().max_retry_after(secs(10)));
        let now = Instant::now();
        let mut plan = Planner::new(None);
        let retry = plan.next(&policy, RETRY, Some(secs(5)), now);
        assert_eq!(
            retry,
            Next::Retry(Wait {
                duration: secs(5),
                reason: WaitReason::RetryAfter
            })
        );
        let mut plan = Planner::new(None);
        let shorter = plan.next(&policy, RETRY, Some(Duration::ZERO), now);
        assert_eq!(
            shorter,
            Next::Retry(Wait {
                duration: secs(1),
                reason: WaitReason::Backoff
            })
        );
        let mut plan = Planner::new(None);
        assert_eq!(
            plan.next(&policy, RETRY, Some(secs(11)), now),
            Next::Stop(StopReason::RetryAfterTooLong)
        );
    }

    #[test]
    fn no_wait_ends_past_the_deadline() {
        let policy = exact(RetryPolicy::new());
        let now = Instant::now();
        let mut plan = Planner::new(Some(now + secs(3)));
        assert!(matches!(
            plan.next(&policy, RETRY, None, now),
            Next::Retry(_)
        ));
        plan.start_attempt();
        // The next backoff is 2 s: from now + 1 s it would end exactly at the deadline.
        assert_eq!(
            plan.next(&policy, RETRY, None, now + secs(1)),
            Next::Stop(StopReason::Deadline)
        );
        let mut plan = Planner::new(Some(now + secs(3)));
        assert_eq!(
            plan.next(&policy, RETRY, Some(secs(4)), now),
            Next::Stop(StopReason::Deadline)
        );
    }

    #[test]
    fn final_and_unsafe_outcomes_stop_at_once() {
        let policy = RetryPolicy::new();
        let mut plan = Planner::new(None);
        let now = Instant::now();
        assert_eq!(
            plan.next(&policy, Decision::Done, None, now),
            Next::Stop(StopReason::Finished)
        );
        assert_eq!(
            plan.next(&policy, Decision::Unsafe, None, now),
            Next::Stop(StopReason::NotIdempotent)
        );
    }
}
