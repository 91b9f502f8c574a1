//! What is worth retrying: the decision for one attempt's outcome.
//!
//! The default follows this table (idempotent means GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or any
//! method whose request carries an idempotency key):
//!
//! | outcome | idempotent | POST, PATCH without a key |
//! |---|---|---|
//! | 429 | retry (throttling) | retry: the server did not process it |
//! | 408 | retry | return the response: a layer may have made it (see below) |
//! | 500, 502, 503, 504 | retry | return the response |
//! | 409 with an idempotency key (still in flight) | retry (throttling) | n/a |
//! | any other status: 2xx, 3xx, other 4xx (including 422), 501 | return it | return it |
//! | never sent: connect error, DNS, refused, HTTP/2 REFUSED_STREAM | retry | retry |
//! | maybe sent: reset, closed, incomplete message, timeout | retry | return the error |
//!
//! A `408 Request Timeout` sent by a server means it never got the whole request (RFC 9110 15.5.9).
//! But a 408 can also be made on the client's side: tower-http's `TimeoutLayer` (its deprecated `new`,
//! and `with_status_code(StatusCode::REQUEST_TIMEOUT, ..)`) answers a timed-out attempt with a 408 it
//! made itself, after the request reached the server, which may have acted on it. A 408 is therefore
//! retried only for idempotent requests. Inside the retry, prefer a timeout that fails the attempt with
//! an error (tower's `TimeoutLayer`, or [`RetryPolicy::attempt_timeout`](crate::RetryPolicy::attempt_timeout)):
//! a timed-out POST is then reported, not repeated; or put tower-http's `TimeoutLayer` outside the
//! retry, where it bounds the whole call. A layer that marks the responses it makes with a response
//! extension can be told apart by a classifier hook, which sees the response's extensions.
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

pub(crate) use table::{is_key, BufferedBytes};
