//! Every setter of [`RetryPolicy`](crate::RetryPolicy), one file per component, declared in the order
//! the documentation reads them: what to retry, how long to wait, how much to try, what the server
//! says, which requests may be sent again, what to change before a retry, what to watch, and gRPC.

mod classification;
#[cfg(feature = "grpc")]
mod grpc;
mod hooks;
mod idempotency;
mod limits;
mod observation;
mod server;
mod waits;
