//! How long to wait before a retry: the [`backoff`] schedules and the delays a server gives
//! ([`retry_after`], [`rate_limit`]). Pure parsers and calculators: nothing here knows the policy.

pub mod backoff;
pub mod rate_limit;
mod reason;
pub mod retry_after;

pub use reason::{Wait, WaitReason};
