//! The tower plumbing, where a request enters: the [`RetryLayer`], the [`Retry`] service it wraps
//! around the inner service, and the [`ResponseFuture`] each call runs through.

pub(crate) mod check_service;
pub(crate) mod future;
mod layer;
mod retry;

pub use future::ResponseFuture;
pub use layer::RetryLayer;
pub use retry::Retry;
