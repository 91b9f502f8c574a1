//! reqwest: the retry layer over a [`reqwest::Client`], in one line. Enabled by the `reqwest` feature.
//!
//! `reqwest::Client` is a `Service<reqwest::Request>`; tower's HTTP layers, this one included, speak
//! `http::Request`. [`ReqwestService`] is the client as a `Service<http::Request<B>>` answering
//! `http::Response<reqwest::Body>`, so the retry layer wraps it like any hyper client:
//!
//! ```
//! use tower::ServiceBuilder;
//! use tower_http_retry::reqwest::ReqwestService;
//! use tower_http_retry::{RetryLayer, RetryPolicy};
//!
//! let client = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryPolicy::default()))
//!     .service(ReqwestService::new(reqwest::Client::new()));
//! # let _ = client;
//! ```
//!
//! reqwest's errors are classified by their type ([`ErrorKind::of`](crate::classify::ErrorKind::of)):
//! `is_connect()` (connect failures and connect timeouts: the request never left) is
//! [`Connect`](crate::classify::ErrorKind::Connect), retried for any method; `is_timeout()` (the
//! client's `timeout` or `read_timeout`) is
//! [`AttemptTimeout`](crate::classify::ErrorKind::AttemptTimeout), as this layer's own per-attempt
//! timeout (so [`Error::is_attempt_timeout`](crate::Error::is_attempt_timeout) holds), retried for
//! idempotent requests; a request that could not be built (a bad URL) or a redirect loop is
//! [`Other`](crate::classify::ErrorKind::Other) and never retried; anything else is classified by its
//! source (a reset connection, a closed one). Request bodies are replayed as everywhere in this crate:
//! `Full<Bytes>`, `Bytes`, `String` by sharing or copying, a buffered `reqwest::Body` by copying its
//! bytes, a stream through [`ReplayBodyLayer`](crate::body::ReplayBodyLayer).
//!
//! A streamed `reqwest::Body` (`wrap_stream`, `wrap`) sent without
//! [`ReplayBodyLayer`](crate::body::ReplayBodyLayer) compiles, but cannot be sent twice: its request is
//! never retried, and the history's stop reason says the body could not be replayed and that
//! `ReplayBodyLayer` makes it replayable
//! ([`NotReplayable::Declined`](crate::body::NotReplayable::Declined)). The first such request of the
//! process also logs a warning naming the layer. Put the layer outside the retry layer:
//!
//! ```
//! use tower::ServiceBuilder;
//! use tower_http_retry::body::ReplayBodyLayer;
//! use tower_http_retry::reqwest::ReqwestService;
//! use tower_http_retry::{RetryLayer, RetryPolicy};
//!
//! let client = ServiceBuilder::new()
//!     .layer(ReplayBodyLayer::new()) // records up to 64 KiB of each body for the retries
//!     .layer(RetryLayer::new(RetryPolicy::default()))
//!     .service(ReqwestService::new(reqwest::Client::new()));
//! # let _ = client;
//! ```
//!
//! With the `reqwest-middleware` feature, `RetryMiddleware` runs the same retries, by the same
//! [`RetryPolicy`](crate::RetryPolicy), as a `reqwest_middleware::Middleware`: each attempt runs the
//! rest of the middleware stack and the client. A buffered body is replayed from a copy; a streamed one
//! is sent once and never retried, since a middleware stack has no place for `ReplayBodyLayer`.
//!
//! ```
//! # #[cfg(feature = "reqwest-middleware")]
//! # {
//! use reqwest_middleware::ClientBuilder;
//! use tower_http_retry::reqwest::RetryMiddleware;
//! use tower_http_retry::RetryPolicy;
//!
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(RetryMiddleware::new(RetryPolicy::default()))
//!     .build();
//! # let _ = client;
//! # }
//! ```
//!
//! [`reqwest::Client`]: https://docs.rs/reqwest/0.13/reqwest/struct.Client.html

mod body;
#[cfg(feature = "reqwest-middleware")]
mod middleware;
mod service;

#[cfg(feature = "reqwest-middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
pub use middleware::RetryMiddleware;
pub use service::{ReqwestFuture, ReqwestService};
