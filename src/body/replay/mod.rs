//! [`ReplayBody`]: records a body read once while the first attempt streams it, and replays it to
//! later attempts. The docs are in the [`body`](crate::body) module.
//!
//! - `body`: [`ReplayBody`], the copy callers see and send;
//! - `tape`: the recording every copy shares, and which copy holds it when;
//! - `layer`: [`ReplayBodyLayer`], which wraps every request's body;
//! - `tests`: the recording and its copies, driven by scripted bodies.

mod body;
mod layer;
mod tape;
#[cfg(test)]
mod tests;

pub use body::ReplayBody;
#[cfg(feature = "grpc")]
pub(crate) use body::DEFAULT_REPLAY_LIMIT;
pub use layer::{ReplayBodyLayer, ReplayBodyService};
