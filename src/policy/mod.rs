//! The configuration: [`RetryPolicy`] composes the settings each component owns (the per-class
//! limits, the idempotency settings, the before-retry hook) and holds every setter.

pub(crate) mod before_retry;
pub(crate) mod classes;
pub mod idempotency;
pub(crate) mod retry_policy;

pub use retry_policy::{
    RetryPolicy, DEFAULT_DRAIN_LIMIT, DEFAULT_IDEMPOTENCY_HEADER, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_RETRY_AFTER,
};
