//! The configuration of a retry layer: [`RetryPolicy`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;

use crate::classify::{default_decision, Decision, Outcome, RequestInfo, RetryClass};
use crate::plan::Limits;
use crate::policy::before_retry::BeforeRetryFn;
use crate::policy::classes::Classes;
use crate::policy::idempotency::Idempotency;
use crate::policy::observe::Observe;
use crate::policy::randomness::Randomness;
use crate::report::on_retry::RetryEvent;
use crate::shared::budget::RetryBudget;
use crate::shared::throttle::Throttle;
use crate::wait::backoff::Backoff;
use crate::wait::retry_after::RetryAfterMode;

/// The default longest `Retry-After` the layer waits for: 60 s.
pub(crate) const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The default number of bytes of a discarded response body read so the connection can be reused.
pub(crate) const DEFAULT_DRAIN_LIMIT: u64 = 64 * 1024;

pub(crate) type ClassifyFn =
    dyn Fn(&RequestInfo<'_>, &Outcome<'_>) -> Option<Decision> + Send + Sync;

/// What to retry, how often, and how long to wait: the configuration of a
/// [`RetryLayer`](crate::RetryLayer).
///
/// Every setting has a default that follows the vendor guidance this crate is built from; see the
/// crate documentation for the table.
///
/// ```
/// use std::time::Duration;
/// use tower_http_retry::{backoff::Backoff, RetryPolicy};
///
/// let policy = RetryPolicy::default()
///     .max_attempts(5)
///     .backoff(Backoff::exponential(Duration::from_millis(200)).max_delay(Duration::from_secs(20)))
///     .max_retry_after(Duration::from_secs(30))
///     .attempt_timeout(Duration::from_secs(10))
///     .deadline(Duration::from_secs(60));
/// # let _ = policy;
/// ```
#[derive(Clone)]
pub struct RetryPolicy {
    pub(crate) classes: Classes,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) throttle: Option<Throttle>,
    pub(crate) max_retry_after: Duration,
    pub(crate) retry_after_mode: RetryAfterMode,
    pub(crate) deadline: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) drain_limit: u64,
    pub(crate) buffer_limit: Option<usize>,
    pub(crate) idempotency: Idempotency,
    pub(crate) before_retry: Option<Arc<BeforeRetryFn>>,
    pub(crate) classify: Option<Arc<ClassifyFn>>,
    #[cfg(feature = "grpc")]
    pub(crate) grpc: Option<Arc<crate::classify::grpc::GrpcPolicy>>,
    pub(crate) observe: Observe,
    pub(crate) randomness: Randomness,
    pub(crate) hedge: Option<crate::hedge::Hedge>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            classes: Classes::default(),
            budget: Some(RetryBudget::default()),
            throttle: Some(Throttle::new()),
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            retry_after_mode: RetryAfterMode::Floor,
            deadline: None,
            attempt_timeout: None,
            drain_limit: DEFAULT_DRAIN_LIMIT,
            buffer_limit: None,
            idempotency: Idempotency::default(),
            before_retry: None,
            classify: None,
            #[cfg(feature = "grpc")]
            grpc: None,
            observe: Observe::default(),
            randomness: Randomness::Os,
            hedge: None,
        }
    }
}

impl RetryPolicy {
    /// The default policy.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::builder().status(503).body(String::new()).unwrap())
    /// });
    /// let client = Retry::new(server, RetryPolicy::new());
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// assert_eq!(history.attempt_count(), 4);
    /// # }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

/// What the layer reads from a policy besides its fields.
impl RetryPolicy {
    /// How an outcome is judged: by the classifier hook when it answers, else by the default table.
    pub(crate) fn decide(&self, request: &RequestInfo<'_>, outcome: &Outcome<'_>) -> Decision {
        self.classify
            .as_ref()
            .and_then(|hook| hook(request, outcome))
            .unwrap_or_else(|| default_decision(request, outcome))
    }

    /// A generator for one request's jitter: from the operating system, or from the policy's seed.
    pub(crate) fn rng(&self) -> SmallRng {
        self.randomness.rng()
    }

    /// Tells the [`on_retry`](Self::on_retry) hook, if there is one.
    pub(crate) fn report(&self, event: RetryEvent) {
        self.observe.report(event);
    }

    /// The gRPC rules, for Debug; `None` without the `grpc` feature.
    fn grpc_rules(&self) -> Option<&dyn fmt::Debug> {
        #[cfg(feature = "grpc")]
        if let Some(grpc) = &self.grpc {
            return Some(grpc);
        }
        None
    }
}

impl Limits for RetryPolicy {
    fn max_attempts(&self, class: RetryClass) -> u32 {
        self.classes.get(class).max_attempts
    }

    fn max_retries(&self, class: RetryClass) -> u32 {
        self.classes.get(class).max_retries
    }

    fn backoff(&self, class: RetryClass) -> &Backoff {
        &self.classes.get(class).backoff
    }

    fn retry_after_cap(&self) -> Duration {
        self.max_retry_after
    }

    fn retry_after_mode(&self) -> &RetryAfterMode {
        &self.retry_after_mode
    }

    fn budget(&self) -> Option<&RetryBudget> {
        self.budget.as_ref()
    }

    fn rng(&self) -> SmallRng {
        RetryPolicy::rng(self)
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("classes", &self.classes)
            .field("budget", &self.budget)
            .field("throttle", &self.throttle)
            .field("max_retry_after", &self.max_retry_after)
            .field("retry_after_mode", &self.retry_after_mode)
            .field("deadline", &self.deadline)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("drain_limit", &self.drain_limit)
            .field("buffer_limit", &self.buffer_limit)
            .field("idempotency", &self.idempotency)
            .field("before_retry_hook", &self.before_retry.is_some())
            .field("classify_hook", &self.classify.is_some())
            .field("grpc", &self.grpc_rules())
            .field("observe", &self.observe)
            .field("hedge", &self.hedge)
            .field(
                "seeded",
                &matches!(self.randomness, Randomness::Seeded { .. }),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn two_requests_never_share_a_sequence() {
        for policy in [RetryPolicy::default(), RetryPolicy::default().seed(42)] {
            let a: Vec<u64> = (0..8)
                .map({
                    let mut r = policy.rng();
                    move |_| r.random()
                })
                .collect();
            let b: Vec<u64> = (0..8)
                .map({
                    let mut r = policy.rng();
                    move |_| r.random()
                })
                .collect();
            assert_ne!(a, b);
        }
    }

    #[test]
    fn a_seed_reproduces_the_same_sequences() {
        let draw =
            |policy: &RetryPolicy| -> Vec<u64> { (0..4).map(|_| policy.rng().random()).collect() };
        assert_eq!(
            draw(&RetryPolicy::new().seed(7)),
            draw(&RetryPolicy::new().seed(7))
        );
        assert_ne!(
            draw(&RetryPolicy::new().seed(7)),
            draw(&RetryPolicy::new().seed(8))
        );
    }

    #[test]
    fn clones_of_a_policy_share_its_budget() {
        let policy = RetryPolicy::new();
        let clone = policy.clone();
        assert!(policy
            .budget
            .as_ref()
            .unwrap()
            .same_as(clone.budget.as_ref().unwrap()));
        let other = RetryPolicy::new();
        assert!(!policy
            .budget
            .as_ref()
            .unwrap()
            .same_as(other.budget.as_ref().unwrap()));
        assert!(RetryPolicy::new().no_retry_budget().budget.is_none());
    }
}
