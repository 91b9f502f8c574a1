//! What is worth retrying: the decision for one attempt's outcome.
//!
//! The default follows this table (idempotent means GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or any
//! method whose request carries an idempotency key):
//!
//! | outcome | idempotent | POST, PATCH without a key |
//! |---|---|---|
//! | 408, 429 | retry (throttling for 429) | retry: the server did not process it |
//! | 500, 502, 503, 504 | retry | return the response |
//! | 409 with an idempotency key (still in flight) | retry (throttling) | n/a |
//! | any other status: 2xx, 3xx, other 4xx (including 422), 501 | return it | return it |
//! | never sent: connect error, DNS, refused, HTTP/2 REFUSED_STREAM | retry | retry |
//! | maybe sent: reset, closed, incomplete message, timeout | retry | return the error |
//!
//! Decisions are made on status codes, headers and error types, never on message text. Transport errors
//! are recognised by walking [`source()`](std::error::Error::source) through hyper-util's client error to
//! `hyper::Error`, `h2::Error` and `std::io::Error`.
//!
//! A hook set with [`RetryPolicy::classify_with`](crate::RetryPolicy::classify_with) sees every outcome
//! first; returning `None` falls back to this table, which is also callable as [`default_decision`].

#[cfg(feature = "grpc")]
pub(crate) mod grpc;
mod table;
mod transport;

pub use table::{
    default_decision, every_server_error, is_idempotent_method, Decision, Outcome, RequestInfo,
    RetryClass,
};
pub use transport::{AttemptTimedOut, ErrorKind};
