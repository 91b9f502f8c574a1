//! gRPC's vocabulary for the decision: the status codes and where a response carries them, which codes
//! are retried as which class, the server's pushback and the retry headers. Public as
//! [`grpc`](crate::grpc).

mod code;
mod codes;
pub(crate) mod headers;
mod pushback;

pub use code::{GrpcCode, GRPC_STATUS};
pub use codes::GrpcPolicy;
pub use headers::{GRPC_PREVIOUS_RPC_ATTEMPTS, GRPC_TIMEOUT};
pub use pushback::GRPC_RETRY_PUSHBACK_MS;

pub(crate) use headers::mark_retry;
pub(crate) use pushback::ServerPushback;
