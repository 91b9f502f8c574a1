//! The configuration: [`RetryPolicy`] composes the settings each component owns (the per-class
//! limits, the idempotency settings, the observation settings, the before-retry hook); its setters
//! are grouped by component in [`setters`], one file each.

pub(crate) mod before_retry;
pub(crate) mod check;
pub(crate) mod classes;
#[cfg(feature = "grpc")]
pub(crate) mod grpc;
pub(crate) mod idempotency;
pub(crate) mod observe;
pub(crate) mod per_call;
pub(crate) mod randomness;
pub(crate) mod retry_policy;
mod seam;
mod setters;

pub use per_call::CallSettings;
pub use retry_policy::RetryPolicy;
