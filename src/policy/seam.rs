//! What a call reads of its policy: the one seam between the policy's layout and the response
//! future, as [`Limits`](crate::plan::Limits) is the planner's. The policy's components may change
//! shape without the future knowing; a getter is named for what the call asks, never for a setter.

use std::time::Duration;

use super::before_retry::BeforeRetryFn;
use super::idempotency::Idempotency;
use super::observe::Observe;
use super::retry_policy::RetryPolicy;
use crate::shared::budget::RetryBudget;
use crate::shared::throttle::Throttle;

impl RetryPolicy {
    /// The throttle every attempt of the call goes through, if any.
    #[inline]
    pub(crate) fn paced_by(&self) -> Option<&Throttle> {
        self.throttle.as_ref()
    }

    /// The hedging policy, when slow attempts get company.
    #[inline]
    pub(crate) fn hedged_by(&self) -> Option<&crate::hedge::Hedge> {
        self.hedge.as_ref()
    }

    /// The retry budget the call deposits into and its retries draw from, if any.
    #[inline]
    pub(crate) fn budget(&self) -> Option<&RetryBudget> {
        self.budget.as_ref()
    }

    /// How long the whole call may take, if bounded.
    #[inline]
    pub(crate) fn call_deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// How long one attempt (or the check before a retry) may take, if bounded.
    #[inline]
    pub(crate) fn per_attempt(&self) -> Option<Duration> {
        self.attempt_timeout
    }

    /// How many bytes of a discarded response body are read so that its connection can be reused.
    #[inline]
    pub(crate) fn drain_up_to(&self) -> u64 {
        self.drain_limit
    }

    /// How many bytes of each response body an attempt reads before its outcome is classified;
    /// `None` when responses pass through as they stream (the default).
    #[inline]
    pub(crate) fn buffer_up_to(&self) -> Option<usize> {
        self.buffer_limit
    }

    /// The idempotency keys: their header, which methods get one, the replay mark.
    #[inline]
    pub(crate) fn keys(&self) -> &Idempotency {
        &self.idempotency
    }

    /// The hook that changes a retry's head, if any.
    #[inline]
    pub(crate) fn retry_hook(&self) -> Option<&BeforeRetryFn> {
        self.before_retry.as_deref()
    }

    /// Whether a classifier of the caller's reads outcomes (a success is then not final at once).
    #[inline]
    pub(crate) fn has_classifier(&self) -> bool {
        self.classify.is_some()
    }

    /// The gRPC settings, when calls are gRPC ones.
    #[cfg(feature = "grpc")]
    #[inline]
    pub(crate) fn grpc_policy(&self) -> Option<&crate::classify::grpc::GrpcPolicy> {
        self.grpc.as_deref()
    }

    /// Whether calls are gRPC ones (their status in `grpc-status`, their metrics gRPC's).
    #[inline]
    pub(crate) fn is_grpc(&self) -> bool {
        #[cfg(feature = "grpc")]
        return self.grpc.is_some();
        #[cfg(not(feature = "grpc"))]
        false
    }

    /// The longest delay a response may ask for and still be waited for.
    #[inline]
    pub(crate) fn longest_asked(&self) -> Duration {
        self.max_retry_after
    }

    /// Who watches: the retry hook, the attempt marks, the give-up warning.
    #[inline]
    pub(crate) fn observers(&self) -> &Observe {
        &self.observe
    }
}
