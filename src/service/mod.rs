//! The tower plumbing, where a request enters: the [`RetryLayer`], the [`Retry`] service it wraps
//! around the inner service, and the [`ResponseFuture`] each call runs through.

mod call_timeout;
pub(crate) mod check_service;
pub(crate) mod future;
mod layer;
mod retry;

pub use call_timeout::{CallTimeout, CallTimeoutFuture, CallTimeoutLayer};
pub use future::ResponseFuture;
pub use layer::RetryLayer;
pub use retry::Retry;
