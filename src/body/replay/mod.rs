//! Replaying any request body: [`ReplayBody`] records what a streaming body sends, so a retry can send
//! it again; [`ReplayBodyLayer`] wraps every request's body in one.
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
//! use tower::{service_fn, BoxError, ServiceBuilder, ServiceExt};
//! use tower_http_retry::{ReplayBody, ReplayBodyLayer, RetryHistory, RetryLayer, RetryPolicy};
//!
//! // A body that is not `Clone`, like axum's `Body` or hyper's `Incoming`.
//! type Upload = UnsyncBoxBody<Bytes, Infallible>;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! // A server that is unavailable once, then answers with the size of what it received.
//! let failed_once = Arc::new(AtomicBool::new(false));
//! let server = service_fn(move |request: Request<ReplayBody<Upload>>| {
//!     let fail = !failed_once.swap(true, Ordering::SeqCst);
//!     async move {
//!         let received = request.into_body().collect().await?.to_bytes();
//!         let mut response = Response::new(received.len().to_string());
//!         if fail {
//!             *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
//!         }
//!         Ok::<_, BoxError>(response)
//!     }
//! });
//!
//! let client = ServiceBuilder::new()
//!     .layer(ReplayBodyLayer::new()) // the one line: any body, replayed from a 64 KiB recording
//!     .layer(RetryLayer::new(RetryPolicy::default()))
//!     .service(server);
//!
//! let upload: Upload = Full::new(Bytes::from_static(b"{\"amount\": 100}")).boxed_unsync();
//! let request = Request::put("http://api.example/v1/items/7").body(upload).unwrap();
//! let response = client.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.body(), "15", "the retry sent the whole body again");
//! assert_eq!(RetryHistory::resend_count(response.extensions()), 1);
//! # }
//! ```
//!
//! # Which bodies need it
//!
//! Bodies that share their bytes (`Full<Bytes>`, `Empty`, `Bytes`) are replayed by reference counting
//! ([`ReplayableBody`]): leave them as they are, they cost nothing to replay. A [`ReplayBody`] is for
//! bodies that can be read only once: axum's `Body`, hyper's `Incoming`, a stream of chunks. Wrapping a
//! `Full<Bytes>` in one works, but adds the costs below for nothing, and a `Full` longer than the limit
//! stops being replayable.
//!
//! That is why recording is a layer of its own rather than something the retry layer does to every
//! body: which path a body takes is decided by its type, once, where the service is built. Without
//! [`ReplayBodyLayer`] every body keeps the zero-copy path (and a one-shot body does not compile); with
//! it, every body is recorded. The same line written by hand is
//! `.map_request(|request: Request<Body>| request.map(ReplayBody::new))`.
//!
//! # How it works, and what it costs
//!
//! The first attempt streams the original body as it comes and records each chunk by reference (a
//! `Bytes` chunk is not copied; any other `Buf` is copied once into `Bytes`). A retry first sends the
//! recording, then streams whatever the original had not yet yielded, recording that too, so a server
//! that answered before reading the whole upload still gets every byte exactly once. Trailers are
//! recorded and sent again. `size_hint` and `is_end_stream` are exact for every copy, with one
//! exception: a body that ends in trailers never reports an exact length, because HTTP/1.1 would then
//! be sent with a `Content-Length` and lose its trailers.
//!
//! - **Memory**: at most the limit of recorded bytes per request ([`DEFAULT_REPLAY_LIMIT`], 64 KiB;
//!   [`ReplayBodyLayer::limit`] changes it), plus a 32-byte handle per recorded chunk and one block of
//!   up to 4 KiB being filled. Chunks under 512 bytes are copied together into blocks so a
//!   body sent in tiny chunks cannot cost more in bookkeeping than in bytes. A recorded `Bytes` chunk
//!   keeps the buffer it points into alive, as it would in any zero-copy design.
//! - **Past the limit** the recording is dropped; the attempt in flight carries on unharmed, and the
//!   request is not retried: the history says [`NotReplayable::TooLarge`]. A body whose size hint is
//!   already over the limit is streamed untouched and never recorded.
//! - **Time**: two allocations per request and a few uncontended locks per attempt (when it is made,
//!   starts sending and stops), never one per chunk; per chunk, a reference count while recording and
//!   a few comparisons after. Streaming 64 MiB in 16 KiB chunks costs about 20 ns per chunk over the
//!   bare body, which is lost in the cost of any real transport (see the README's "Performance").
//! - **A response that arrives while its request body is still being sent** ends the retries (so does
//!   an attempt timeout at that point): that attempt's transport still owns the body and may still be
//!   reading it, so another attempt could not be given a whole body. The history says
//!   [`NotReplayable::StillSending`].
//! - An error from the original body ends the retries too ([`NotReplayable::BodyFailed`]): the rest of
//!   the body no longer exists.
//!
//! # One copy at a time
//!
//! Copies take turns: the copy being sent holds the recording and the original, and hands them on when
//! it has sent everything or is dropped. A copy polled while another is still being sent yields an
//! error frame ([`NotReplayable::StillSending`]) rather than a corrupt body. [`ReplayableBody::replay`]
//! makes a new copy, and refuses to while a copy is in the middle of being sent.

mod body;

pub use body::{ReplayBody, ReplayBodyLayer, ReplayBodyService, DEFAULT_REPLAY_LIMIT};
