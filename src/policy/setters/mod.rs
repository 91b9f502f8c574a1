//! Every setter of [`RetryPolicy`](crate::RetryPolicy), one `impl` block per component, each in its
//! own file. Rustdoc lists the blocks in the order of their files' names, so the names sort in the
//! order the documentation reads: what to retry (and for gRPC), how long to wait, when a slow
//! attempt gets company, what to change before a retry, when to stop, what the server asks for,
//! which requests may be sent again, and what to watch.

mod classify;
#[cfg(feature = "grpc")]
mod classify_grpc;
mod delay;
mod hedge;
mod hooks;
mod limits;
mod server;
mod side_effects;
mod watch;
