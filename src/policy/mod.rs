//! The configuration: [`RetryPolicy`] composes the settings each component owns (the per-class
//! limits, the idempotency settings, the before-retry hook) and holds every setter.

pub(crate) mod before_retry;
pub(crate) mod classes;
pub mod idempotency;
pub(crate) mod retry_policy;

pub use classes::DEFAULT_MAX_ATTEMPTS;
pub use idempotency::DEFAULT_IDEMPOTENCY_HEADER;
pub use retry_policy::{RetryPolicy, DEFAULT_DRAIN_LIMIT, DEFAULT_MAX_RETRY_AFTER};
