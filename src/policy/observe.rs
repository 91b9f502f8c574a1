//! The observability settings: the [`on_retry`](crate::RetryPolicy::on_retry) hook, the attempt
//! number put on each request ([`mark_attempts`](crate::RetryPolicy::mark_attempts)) and the
//! rate-limited give-up warning, which clones of a policy share.

use std::fmt;
use std::sync::Arc;

use crate::report::on_retry::{OnRetryFn, RetryEvent};
use crate::report::warn::GiveUpLog;

/// What a policy reports besides its history.
#[derive(Clone, Default)]
pub(crate) struct Observe {
    pub(crate) on_retry: Option<Arc<OnRetryFn>>,
    pub(crate) mark_attempts: bool,
    pub(crate) give_ups: Arc<GiveUpLog>,
}

impl fmt::Debug for Observe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observe")
            .field("on_retry", &self.on_retry.is_some())
            .field("mark_attempts", &self.mark_attempts)
            .finish()
    }
}

impl Observe {
    /// Tells the hook, if there is one.
    pub(crate) fn report(&self, event: RetryEvent) {
        if let Some(hook) = &self.on_retry {
            hook(&event);
        }
    }
}
