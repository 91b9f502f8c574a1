//! [`ReplayBody`]: records a body read once while the first attempt streams it, and replays it to
//! later attempts. The docs are in the [`body`](crate::body) module.

mod body;

pub use body::{ReplayBody, ReplayBodyLayer, ReplayBodyService};
