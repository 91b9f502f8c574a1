//! [`ReplayBody`]: records a body read once while the first attempt streams it, and replays it to
//! later attempts. The docs are in the [`body`](crate::body) module.

mod body;
mod layer;

pub use body::ReplayBody;
#[cfg(feature = "grpc")]
pub(crate) use body::DEFAULT_REPLAY_LIMIT;
pub use layer::{ReplayBodyLayer, ReplayBodyService};
