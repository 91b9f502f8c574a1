//! gRPC: retries by `grpc-status`, with gRFC A6's pushback and attempt headers, and a layer that takes a
//! tonic `Channel` as it is. Enabled by the `grpc` feature; the crate does not depend on tonic.
//!
//! ```ignore
//! // tonic: one layer between the channel and the generated client.
//! let channel = tonic::transport::Channel::from_static("http://127.0.0.1:50051").connect().await?;
//! let channel = ServiceBuilder::new()
//!     .layer(GrpcRetryLayer::new(tonic::body::Body::new))
//!     .service(channel);
//! let mut client = HealthClient::new(channel);
//! ```
//!
//! # What is retried
//!
//! gRPC answers errors with HTTP 200: the code is in `grpc-status`. A server that fails a call before
//! answering (the usual way: `UNAVAILABLE`, `RESOURCE_EXHAUSTED`, `INVALID_ARGUMENT`) sends a
//! *trailers-only* response, whose `grpc-status` arrives with the head, and that is what
//! [`RetryPolicy::grpc`](crate::RetryPolicy::grpc) judges. [`GrpcPolicy`] says which codes are
//! retried and as which class: by default `UNAVAILABLE` (transient) and `RESOURCE_EXHAUSTED`
//! (throttling), as gRFC A6 and Envoy advise. A response without `grpc-status` but with an HTTP error
//! status (a proxy's 503) gets the code gRPC maps it to.
//!
//! **Not covered: a status that comes only in the trailers**, after a response has begun (a streaming
//! call that fails midway). Such a call is *committed* in A6's terms: gRPC's own clients never retry
//! it, since the application may already have read messages from it, and neither does this layer.
//! Holding the whole response until its trailers arrive (as [`first_byte`](crate::body::FirstByteLayer) holds a
//! head) would turn every streaming call into a buffered one; it is left out on purpose.
//!
//! # What the server says
//!
//! - `grpc-retry-pushback-ms: N` sets the wait before the retry to exactly `N` ms (not a floor with
//!   jitter: A6 gives the server the choice), within
//!   [`max_retry_after`](crate::RetryPolicy::max_retry_after). A negative or malformed value means
//!   "do not retry": the response is returned.
//!   The pushback holds that call only: the [throttle](crate::throttle) learns a rate from
//!   `RESOURCE_EXHAUSTED` as from a 429, per channel (a path-only request's scope is the channel it
//!   goes through), and holds nothing for a pushback.
//! - Every retry carries `grpc-previous-rpc-attempts` (the number of attempts before it).
//! - A request's `grpc-timeout` is the deadline of the whole call, retries included (the sooner of it
//!   and [`deadline`](crate::RetryPolicy::deadline)); each retry's `grpc-timeout` is the time left.
//!
//! When the deadline passes during an attempt the call ends with `DEADLINE_EXCEEDED`: [`GrpcRetryLayer`]
//! answers a trailers-only response (`grpc-status: 4`), which tonic reads as that status, rather than an
//! error it would report as `UNKNOWN` (or `CANCELLED 'Timeout expired'`, its channel's timeout). A wait
//! that would end past the deadline is not started, and the last response is returned.
//!
//! # When a call fails
//!
//! tonic's `Status` keeps no extensions, so the [`RetryHistory`](crate::RetryHistory) of a failed call
//! travels as response metadata, which `Status::metadata()` keeps (a successful call that retried
//! carries it too, beside the history in its extensions):
//!
//! | metadata | value |
//! |---|---|
//! | [`x-retry-attempts`](RETRY_ATTEMPTS) | the attempts made: `3` |
//! | [`x-retry-stop`](RETRY_STOP) | why the layer stopped: `attempts_exhausted`, `deadline`, `finished`, ... (the metrics' `stop_reason`) |
//! | [`x-retry-history`](RETRY_HISTORY) | the history's line: `UNAVAILABLE (wait 5ms backoff), UNAVAILABLE: the attempt limit was reached` |
//!
//! A stream the server reset ends with the code gRPC's own clients give it (PROTOCOL-HTTP2's table, as
//! grpc-go and grpc-java): `REFUSED_STREAM` (retried first: the server never saw it) `UNAVAILABLE`,
//! `CANCEL` `CANCELLED`, `ENHANCE_YOUR_CALM` `RESOURCE_EXHAUSTED`, `INADEQUATE_SECURITY`
//! `PERMISSION_DENIED`, any other reason `INTERNAL` (the `http2` feature reads the reason). Any other
//! error reaches tonic as this crate's [`Error`](crate::Error): tonic's `Status::source()` is that error
//! (or has it in its chain) and [`Error::history`](crate::Error::history) is the history. The
//! [`on_retry`](crate::RetryPolicy::on_retry) hook's `Stop` event fires for a failed call as for any.
//!
//! # Metrics
//!
//! With the `metrics` feature, gRFC A96's per-call instruments, labelled `grpc.method`
//! (`package.Service/Method`, from the request path) and `grpc.target`
//! ([`GrpcRetryLayer::target`], else the request URI's authority, else `unknown`: tonic's clients send
//! path-only URIs): see [`metrics`](crate::metrics).
//!
//! The history names the gRPC codes that came in a response's head (a failure, sent "trailers-only"):
//! `UNAVAILABLE (wait 30ms grpc-pushback), 200: the outcome was final`. A success shows as its HTTP
//! status, `200`: its `grpc-status` comes in the trailers, after the head the layer decides on.
//!
//! # tonic
//!
//! tonic's `Channel` takes `Request<tonic::body::Body>`, a body that can be read only once. Retrying it
//! needs a recorded copy ([`ReplayBody`](crate::body::ReplayBody)), which is another type; [`GrpcRetryLayer`]
//! records it, retries, and turns each copy back into the channel's body type with the function it is
//! given (`tonic::body::Body::new`), so the stack takes and returns exactly what the channel does.
//! Taking a function keeps tonic out of this crate's dependencies and works for any client whose body
//! type can wrap another body.
//!
//! # Where the code is
//!
//! gRPC support sits in three places, each where the crate's import order (lowest first: `classify/`,
//! then the policy, then the service) lets it be. `classify/grpc/` has gRPC's vocabulary: the codes,
//! which are retried as which class ([`GrpcPolicy`]), the header names and the parsers of
//! `grpc-timeout` and the pushback; the policy holds a `GrpcPolicy` and the future writes the retry
//! headers, so it sits below both. `policy/grpc.rs` judges a response head by its code and takes the
//! call's deadline from `grpc-timeout`: it reads the [`RetryPolicy`](crate::RetryPolicy), so it sits
//! with it, and the future calls it from its `cfg(feature = "grpc")` blocks (with the retry headers
//! and the choice of metric names). This module is what only a gRPC caller uses, [`GrpcRetryLayer`]
//! and [`GrpcStatus`]: built on [`Retry`](crate::Retry), it sits above everything, and re-exports
//! the vocabulary.

mod layer;
mod status;

pub use crate::classify::grpc::{
    GrpcCode, GrpcPolicy, GRPC_PREVIOUS_RPC_ATTEMPTS, GRPC_RETRY_PUSHBACK_MS, GRPC_STATUS,
    GRPC_TIMEOUT,
};
pub use layer::{GrpcRetryLayer, IntoBody};
pub use status::{GrpcStatus, GrpcStatusFuture, RETRY_ATTEMPTS, RETRY_HISTORY, RETRY_STOP};
