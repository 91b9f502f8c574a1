//! What the caller sees: the [`history`] of a call, attached to its response or carried by its
//! [`Error`](error::Error).

pub(crate) mod check;
pub(crate) mod error;
pub(crate) mod history;
