//! State shared across calls and clones of a policy: the retry [`budget`] and the per-server
//! [`throttle`].

pub mod budget;
// The throttle's rate law: below both the throttle (one process) and the store (a fleet's
// schedule), so that each applies it without importing the other.
pub mod law;
pub mod store;
pub mod throttle;
