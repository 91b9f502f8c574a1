//! HTTP-aware retries for [tower] services: a [`RetryLayer`] that retries what is worth retrying, waits
//! with jittered exponential backoff and `Retry-After`, and never repeats a request that may have taken
//! effect unless that is safe.
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! // A server that is unavailable twice, then answers.
//! let calls = Arc::new(AtomicU32::new(0));
//! let server = service_fn(move |_: Request<Full<Bytes>>| {
//!     let n = calls.fetch_add(1, Ordering::SeqCst);
//!     async move {
//!         let status = if n < 2 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
//!         let mut response = Response::new(Full::new(Bytes::new()));
//!         *response.status_mut() = status;
//!         Ok::<_, std::convert::Infallible>(response)
//!     }
//! });
//!
//! let client = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryPolicy::default()))
//!     .service(server);
//!
//! let request = Request::get("http://api.example/v1/items").body(Full::new(Bytes::new())).unwrap();
//! let response = client.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! let history = response.extensions().get::<RetryHistory>().unwrap();
//! assert_eq!(history.attempt_count(), 3);
//! # }
//! ```
//!
//! # With your client
//!
//! The layer wraps any `Service<http::Request<B>>`. The [README] has the quick start, the policy for
//! each kind of API in one table ([Choosing a policy]), and [`examples/recipes.rs`] a policy per
//! vendor's guidance, each checked against a server that behaves as the guidance says.
//!
//! **hyper-util**: its legacy client, as it is (the quick start above, over a real socket):
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::ServiceBuilder;
//! use tower_http_retry::{RetryLayer, RetryPolicy};
//!
//! let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let service = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryPolicy::default()))
//!     .service(client);
//! # let _ = service;
//! ```
//!
//! **axum** (a proxy of streamed bodies): one more layer outside the retry records each body once
//! for its retries ([`body`]; `examples/axum_proxy.rs`):
//!
//! ```no_run
//! use axum::body::Body;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::ServiceBuilder;
//! use tower_http_retry::body::{ReplayBody, ReplayBodyLayer};
//! use tower_http_retry::{RetryLayer, RetryPolicy};
//!
//! let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Body>>();
//! let upstream = ServiceBuilder::new()
//!     .layer(ReplayBodyLayer::new())
//!     .layer(RetryLayer::new(RetryPolicy::default()))
//!     .service(client);
//! # let _ = upstream;
//! ```
//!
//! **tonic** (feature `grpc`): a `Channel` takes `grpc::GrpcRetryLayer` in one line, and the
//! generated client wraps the result unchanged; codes, pushback and deadlines as gRFC A6 says
//! ([README: gRPC and tonic]).
//!
//! ```ignore
//! let channel = ServiceBuilder::new()
//!     .layer(GrpcRetryLayer::new(tonic::body::Body::new))
//!     .service(Channel::from_static("http://127.0.0.1:50051").connect().await?);
//! let mut client = HealthClient::new(channel);
//! ```
//!
//! **reqwest** (feature `reqwest`): `reqwest::ReqwestService` is a `reqwest::Client` as a service,
//! and reqwest's errors are classified by type ([README: reqwest]).
//!
//! ```ignore
//! let client = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryPolicy::default()))
//!     .service(ReqwestService::new(reqwest::Client::new()));
//! ```
//!
//! [README]: https://github.com/tower-http-retry/tower-http-retry#readme
//! [Choosing a policy]: https://github.com/tower-http-retry/tower-http-retry#choosing-a-policy
//! [`examples/recipes.rs`]: https://github.com/tower-http-retry/tower-http-retry/blob/main/examples/recipes.rs
//! [README: gRPC and tonic]: https://github.com/tower-http-retry/tower-http-retry#grpc-and-tonic
//! [README: reqwest]: https://github.com/tower-http-retry/tower-http-retry#reqwest
//!
//! # What is retried
//!
//! 408, 429, 500, 502, 503, 504 and transport failures; never any other 4xx. A POST or PATCH without an
//! idempotency key is retried only when the server cannot have acted on it: 429, and failures before
//! the request left (connect errors, HTTP/2 REFUSED_STREAM); not on 408, which a timeout layer inside
//! the retry may have made after the server got the request. The full table is in [`classify`], and
//! [`RetryPolicy::classify_with`] replaces or extends it.
//!
//! # Side effects
//!
//! A POST or PATCH that may have taken effect is retried only when it carries an idempotency key, and
//! always with the same key, or when a [`check`] run just before the re-send (a lookup of the job it
//! may have created, for a server that does not deduplicate) says so. [`RetryPolicy::inject_idempotency_keys`] gives each one without a key a
//! fresh one (a version 4 UUID from the operating system's generator) before the first attempt; a key
//! the caller set is never replaced. `409` with a key (the first attempt is still in flight) is retried
//! with the same key after its `Retry-After`; `422` (the key came back with another payload) is not.
//! [`RetryHistory::idempotency_key`] and [`RetryHistory::is_replayed`] tell the caller which key was
//! used and whether the answer was a replay. [`RetryPolicy::before_retry`] rewrites each retry's head
//! (re-sign it, number the attempt) but cannot change the key. The contract a server must keep for this
//! to be safe is in [`RetryPolicy::inject_idempotency_keys`].
//!
//! # How long to wait
//!
//! [`Backoff`](backoff::Backoff) computes each delay (exponential, constant, linear or an explicit
//! schedule), capped per delay and spread by a [`Jitter`](backoff::Jitter). A response's `Retry-After`
//! ([`retry_after`]) is a floor under that delay (or, with
//! [`RetryAfterMode::Exact`](retry_after::RetryAfterMode::Exact), the delay itself); a request for longer than
//! [`max_retry_after`](RetryPolicy::max_retry_after), or past the deadline, is not waited for: the
//! response is returned at once and [`RetryHistory::retry_after`] carries what the server asked for.
//!
//! # Storm control
//!
//! Every policy draws its retries from a [retry budget](budget) (10% of requests over 10 s, plus a floor
//! of 10 retries per window), so that a fleet of clients adds about 10% to the load of a server in
//! trouble instead of multiplying it. Throttling and transient outcomes have their own backoff and
//! attempt limit ([`RetryPolicy::backoff_for`]), and may have a limit on their own retries
//! ([`RetryPolicy::max_retries_for`]). A spent quota reported by [rate-limit
//! headers](rate_limit) makes a retry wait for its reset. A per-scope [throttle], on by
//! default, learns the rate a server admits from its 429s, `Retry-After` and rate-limit headers and
//! sends at that rate, first attempts included, in arrival order: it paces (waits for capacity) or,
//! in shed mode, fails at once with an error saying when to come back. Retries it paces cost the
//! budget nothing.
//!
//! # Per call
//!
//! A request may carry [`CallSettings`] as an extension: no retries, other attempts or backoff, a
//! shorter deadline or attempt timeout, a classifier of its own, merged over the layer's policy for
//! that call only.
//!
//! # Request bodies
//!
//! Every retry sends the body again. Bodies that share their bytes (`Full<Bytes>`, `Empty`, `Bytes`)
//! are replayed without copying a byte ([`body`]). Bodies that can be read only once (axum's `Body`,
//! hyper's `Incoming`, a stream) become replayable with one more layer,
//! [`ReplayBodyLayer`](body::ReplayBodyLayer), which records up to 64 KiB of each body while the first
//! attempt streams it.
//!
//! # Response bodies
//!
//! Every response comes back with a [`ResponseBody`](body::ResponseBody): the inner service's body,
//! untouched, unless the policy [buffers responses](RetryPolicy::buffer_responses). Then each attempt
//! reads its body, up to a limit, before it is judged: a body that breaks while read (a reset, a
//! truncated message, the attempt timeout) is retried like a transport failure after sending, a
//! classifier can read the bytes ([`Outcome::body`](classify::Outcome::body)), and the caller gets them
//! ready at once. A body longer than the limit is passed on as it streams, and not retried once passed
//! on. At most the limit is held per call, apart from the request's replay buffer.
//!
//! # Recipes
//!
//! The crate's `examples/recipes.rs` writes the retry guidance of several real APIs as policies of a few
//! lines each (429 only with an exact `Retry-After`; a full checklist with idempotency keys; exponent
//! 1.5 for an hour; 5xx with a separate 429 pause; a job lookup before re-sending a create; a 60 s
//! retry window and a timeout over the whole response; a webhook schedule; streaming; the real error
//! in a JSON body), and
//! `tests/recipes.rs` checks each one; the README's "Choosing a policy" lists them.
//!
//! # Defaults
//!
//! | setting | default | where it comes from |
//! |---|---|---|
//! | attempts | 4 (3 retries), for each class | the common default of the vendor SDKs (3 retries, "3 to 5 attempts") |
//! | backoff, transient (5xx, 408, transport) | exponential from 300 ms, doubling, full jitter | "300 ms initial" for transient errors (Supertone) |
//! | backoff, throttling (429, 409 in flight) | exponential from 1 s, doubling, equal jitter | "initial wait of 500–1000 ms" for 429 (Supertone); "wait at least 1s" (QuillAI) |
//! | cap per delay | 30 s | QuillAI's 30 s cap |
//! | jitter | full | AWS's simulation; "full jitter is strictly better" (QuillAI) |
//! | longest `Retry-After` waited for | 60 s | Supertone's 60 s between tries |
//! | retry budget | 10% of requests over 10 s, floor of 10 retries | Google SRE book, "Handling Overload"; Finagle's 10 s window |
//! | throttle | on, pace mode, per quota scope (server and credential), engaged by a scope's first 429 | AWS's adaptive retry mode; gRPC retry throttling; [`RetryPolicy::no_throttle`] turns it off |
//! | total deadline | none | depends on the endpoint; set one ([`RetryPolicy::deadline`]) |
//! | per-attempt timeout | none | depends on the endpoint; set one ([`RetryPolicy::attempt_timeout`]) |
//! | drained from a discarded body | 64 KiB | enough for an error page, small enough to be bounded |
//! | recorded of a [`ReplayBody`](body::ReplayBody) | 64 KiB | the common replay buffer size (linkerd's, for one) |
//! | response bodies read within the attempt | none: passed through as they stream; [`buffer_responses`](RetryPolicy::buffer_responses) reads up to a limit | reading costs memory; only the caller knows what is small enough |
//! | idempotency key header | `Idempotency-Key` | the IETF draft |
//! | keys injected | none; [`inject_idempotency_keys`](RetryPolicy::inject_idempotency_keys): POST, PATCH | only servers that honour keys make a keyed retry safe |
//! | replayed-answer header | `X-Idempotency-Replayed: true` | the vendor guidance |
//!
//! # What the caller sees
//!
//! The final response, with a [`RetryHistory`] extension whenever the layer had a decision to make or
//! set the request's idempotency key, or the request is not idempotent by its method (a POST, a PATCH)
//! and carried a key of its own; or an [`Error`] with the same history and the last attempt's error as
//! its source. Every retry is a
//! `tracing` event at debug level and every retry the layer declines is one at warn level (at most one
//! line per host per 10 s, with the count of those left out); neither ever records a header value, a
//! path or a query.
//!
//! While calls run, [`RetryPolicy::on_retry`] is told of every retry and of how each call that retried
//! or gave up ended ([`RetryEvent`]); [`RetryPolicy::mark_attempts`] puts the [`Attempt`] number on every
//! attempt's request for the layers inside the retry; and the `metrics` feature records counters and
//! histograms through the `metrics` facade ([`metrics`]).
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `hyper-util` | on | hyper-util's client errors recognised (connect failures) |
//! | `http2` | on | `h2` errors recognised (REFUSED_STREAM, graceful GOAWAY: never sent) |
//! | `grpc` | off | the `grpc` module: `grpc-status`, pushback, attempt headers, a layer for tonic's `Channel` |
//! | `reqwest` | off | the `reqwest` module: `reqwest::Client` as a tower service, its errors classified |
//! | `reqwest-middleware` | off | `reqwest`, and `reqwest::RetryMiddleware`: the same retries in a reqwest-middleware stack |
//! | `metrics` | off | counters and histograms through the `metrics` facade ([`metrics`] lists the names) |
//! | `redis` | off | fleet mode on Redis: `Store::redis`, one retry [`budget`] and one [`throttle`] shared by many processes ([`store`]) |
//! | `redis-tls` | off | `redis` over TLS: `rediss://` URLs (rustls, the system's roots) and `Store::redis_with_ca` |
//!
//! # Runtime
//!
//! Waits and timeouts use tokio's timer, so calls that retry or have a timeout or deadline run inside a
//! tokio runtime with time enabled. Everything works under `tokio::time::pause()`.
//!
//! # How the crate is built
//!
//! The source tree follows a request's path; each folder is a private module, and the public modules
//! above are re-exported from them:
//!
//! 1. `service/`: the tower plumbing where the request enters: [`RetryLayer`], [`Retry`] and the
//!    [`ResponseFuture`] state machine that runs the attempts and the waits. Each state owns what it
//!    waits for, and each step has a file of its own in `service/future/` (the first attempt, the
//!    outcome, the pause, the throttle's turn, the check, sending):
//!
//!    ```text
//!    Calling ──(retry)──▶ Pausing ──(over)──▶ Readying ──(ready)──▶ Calling
//!       │  ├──(a head, responses buffered)──▶ Reading ──(retry)──▶ Pausing
//!       │  └── Racing, instead of Calling when hedged ──(retry)──▶ Pausing
//!       │                 Backoff ─▶ BodyBack ─▶ Turn ─▶ InLine
//!       │                    └──(a check due)──▶ Checking ──(retry)──▶ Pausing (Turn)
//!       └──(final outcome, deadline, not ready, shed)──▶ Done
//!    ```
//!
//!    Beside it, `call_timeout/`: [`CallTimeoutLayer`], one deadline over the whole call, outside
//!    the retry.
//! 2. `policy/`: the configuration. [`RetryPolicy`] holds every setter and composes what each component
//!    owns: the per-class limits, the idempotency settings, the before-retry hook.
//! 3. `classify/`: what one attempt's outcome calls for: the status table and the transport-error
//!    taxonomy ([`classify`]).
//! 4. `plan.rs`: the pure planner that applies every limit of the policy to that verdict: retry after
//!    which wait, or stop and why.
//! 5. `wait/`: how long to wait: the [`backoff`] schedules and the pure parsers of the delays a server
//!    gives ([`retry_after`], [`rate_limit`]). Nothing there knows the policy.
//! 6. `shared/`: what calls and clones share: the retry [`budget`] and the per-scope [`throttle`]
//!    (one file per role: scopes, the sharded map of lanes, a lane, the rate law, fleets).
//! 7. `body/`: the request bodies that are sent again ([`body`]) and the response bodies drained or
//!    held until their first byte.
//! 8. `report/`: what the caller sees: the [`RetryHistory`] and the [`Error`]; and what it watches
//!    while calls run: the [`RetryEvent`]s, the [`Attempt`] number, the [`metrics`] and the
//!    rate-limited give-up warning.
//!
//! Imports only go down this list's dependency order and never round in a circle: `wait/`,
//! `classify/` and `body/` depend on nothing else of the crate; `report/` and `shared/` on those;
//! the planner on them; the policy on the planner; the service and the call timeout on everything.
//! `tests/layout.rs` checks it.
//!
//! [tower]: https://docs.rs/tower

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod body;
mod call_timeout;
pub mod classify;
#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub mod grpc;
pub mod hedge;
mod plan;
mod policy;
mod report;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
mod service;
mod shared;
mod wait;

pub use call_timeout::{CallTimeout, CallTimeoutFuture, CallTimeoutLayer};
pub use policy::{CallSettings, RetryPolicy};
pub use report::attempt::Attempt;
pub use report::error::Error;
pub use report::history::RetryHistory;
pub use report::metrics;
pub use report::on_retry::RetryEvent;
pub use service::{ResponseFuture, Retry, RetryLayer};
pub use shared::{budget, store, throttle};
pub use wait::{backoff, rate_limit, retry_after};

/// A type-erased error, as tower middleware passes them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A check before re-sending a request that may have taken effect: see [`CheckBeforeRetry`](check::CheckBeforeRetry).
pub mod check {
    pub use crate::policy::check::{CheckBeforeRetry, CheckRequest, CheckVerdict, NoCheck};
    pub use crate::service::check_service::{CheckService, CheckServiceFuture};
}

/// The parts of a [`RetryHistory`]: each attempt's record and outcome, the waits between attempts and
/// why the layer stopped.
pub mod history {
    pub use crate::report::check::{CheckAnswer, CheckRecord};
    pub use crate::report::history::{AttemptOutcome, AttemptRecord, StopReason};
    pub use crate::wait::{Wait, WaitReason};
}

// The README's examples compile as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
