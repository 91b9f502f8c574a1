//! State shared across calls and clones of a policy: the retry [`budget`] and the per-server
//! [`throttle`].

pub mod budget;
pub mod store;
pub mod throttle;
