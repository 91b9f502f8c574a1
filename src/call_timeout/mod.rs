//! The call timeout: one deadline over the whole call, retries and response body included, put
//! outside the retry layer.
//!
//! ```
//! use std::convert::Infallible;
//! use std::pin::Pin;
//! use std::task::{Context, Poll};
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body::Frame;
//! use http_body_util::BodyExt;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_http_retry::body::CallTimedOut;
//! use tower_http_retry::{CallTimeoutLayer, RetryLayer, RetryPolicy};
//!
//! /// A response body that sends nothing, ever.
//! struct Stalled;
//! impl http_body::Body for Stalled {
//!     type Data = Bytes;
//!     type Error = Infallible;
//!     fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
//!         Poll::Pending
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let server = service_fn(|_: Request<String>| async { Ok::<_, Infallible>(Response::new(Stalled)) });
//! let client = ServiceBuilder::new()
//!     .layer(CallTimeoutLayer::new(Duration::from_secs(10)))
//!     .layer(RetryLayer::new(RetryPolicy::default()))
//!     .service(server);
//!
//! let started = tokio::time::Instant::now();
//! let response = client.oneshot(Request::new(String::new())).await.unwrap();
//! let error = response.into_body().collect().await.unwrap_err();
//! assert!(error.is::<CallTimedOut>());
//! assert_eq!(started.elapsed(), Duration::from_secs(10), "the body was bounded by the call's deadline");
//! # }
//! ```
//!
//! - `layer`: [`CallTimeoutLayer`], the timeout a caller sets;
//! - `service`: [`CallTimeout`], which gives each call its deadline (the sooner of the layer's and the
//!   request's own `CallSettings::deadline`) and hands it to the retry layer inside as the request's
//!   `CallSettings`;
//! - `future`: [`CallTimeoutFuture`], which wraps the response body in a `CallTimeoutBody`.
//!
//! The body, `CallTimeoutBody` and its error `CallTimedOut`, is in `src/body/call_timeout.rs`, public
//! as `body::CallTimeoutBody`: `body/` imports no other folder, and a body here would make it import
//! this one, which needs the policy (see that file).

mod future;
mod layer;
mod service;

pub use future::CallTimeoutFuture;
pub use layer::CallTimeoutLayer;
pub use service::CallTimeout;
