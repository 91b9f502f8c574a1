//! The configuration: [`RetryPolicy`] composes the settings each component owns (the per-class
//! limits, the idempotency settings, the before-retry hook) and holds every setter.

pub(crate) mod before_retry;
pub(crate) mod check;
pub(crate) mod classes;
#[cfg(feature = "grpc")]
pub(crate) mod grpc;
pub(crate) mod idempotency;
pub(crate) mod observe;
pub(crate) mod per_call;
pub(crate) mod retry_policy;
pub(crate) mod shortcuts;

pub use per_call::CallSettings;
pub use retry_policy::RetryPolicy;
