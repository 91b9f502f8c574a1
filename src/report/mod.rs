//! What the caller sees: the [`history`] of a call, attached to its response or carried by its
//! [`Error`](error::Error); and what it can watch while calls run: the [`on_retry`] events, the
//! [`attempt`] number inner layers read, the [`metrics`] and the rate-limited give-up [`warn`]ing.

pub(crate) mod attempt;
pub(crate) mod check;
pub(crate) mod error;
pub(crate) mod history;
pub mod metrics;
pub(crate) mod on_retry;
pub(crate) mod outcome;
pub(crate) mod warn;
