//! [`GrpcRetryLayer`]: retries in front of a gRPC client (a tonic `Channel`) that takes its own body
//! type, in one layer.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request};
use tower_layer::Layer;
use tower_service::Service;

use super::status::GrpcStatus;
use super::GrpcPolicy;
use crate::body::{ReplayBody, ReplayBodyLayer, ReplayBodyService, DEFAULT_REPLAY_LIMIT};
use crate::check::NoCheck;
use crate::{Retry, RetryPolicy};

/// Retries gRPC calls on a client whose request body is its own type, such as tonic's `Channel`
/// (`Service<Request<tonic::body::Body>>`): records each request body (a [`ReplayBody`], up to 64 KiB
/// by default), runs a [`Retry`] with a gRPC policy ([`RetryPolicy::grpc`]), and hands each attempt's
/// copy to the client in its own body type through `into_body` (for tonic, `tonic::body::Body::new`).
///
/// The stack is [`GrpcStatus`] (the history as response metadata, a passed deadline or a reset stream as
/// a gRPC status, A96's metrics), `ReplayBodyLayer`, `RetryLayer`, then the conversion: the service it
/// makes takes and returns what the client takes and returns, so a generated client wraps it
/// unchanged.
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty};
/// use tower::{service_fn, Layer, ServiceExt};
/// use tower_http_retry::grpc::GrpcRetryLayer;
/// use tower_http_retry::body::ReplayBody;
/// use tower_http_retry::BoxError;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// // A client whose body is a boxed body, as tonic's is.
/// type ClientBody = UnsyncBoxBody<Bytes, BoxError>;
/// let channel = service_fn(|_: Request<ClientBody>| async {
///     let ok = Response::builder().header("grpc-status", "0");
///     Ok::<_, BoxError>(ok.body(Empty::<Bytes>::new()).unwrap())
/// });
///
/// // With tonic: `GrpcRetryLayer::new(tonic::body::Body::new)`.
/// let into_body = |body: ReplayBody<ClientBody>| body.boxed_unsync();
/// let client = GrpcRetryLayer::new(into_body).layer(channel);
/// let request = Request::post("http://svc/pkg.Svc/Call")
///     .body(Empty::<Bytes>::new().map_err(Into::into).boxed_unsync())
///     .unwrap();
/// let response = client.oneshot(request).await.unwrap();
/// assert_eq!(response.headers()["grpc-status"], "0");
/// # }
/// ```
#[derive(Clone)]
pub struct GrpcRetryLayer<F> {
    policy: Arc<RetryPolicy>,
    replay_limit: u64,
    target: Option<HeaderValue>,
    into_body: F,
}

impl<F> GrpcRetryLayer<F> {
    /// The default policy with gRPC's rules ([`GrpcPolicy::default`]), recording up to
    /// 64 KiB of each request; `into_body` turns a recorded body into the
    /// client's body type.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::{combinators::UnsyncBoxBody, BodyExt};
    /// use tower_http_retry::grpc::GrpcRetryLayer;
    /// use tower_http_retry::body::ReplayBody;
    /// use tower_http_retry::BoxError;
    ///
    /// type ClientBody = UnsyncBoxBody<Bytes, BoxError>;
    /// let layer = GrpcRetryLayer::new(|body: ReplayBody<ClientBody>| body.boxed_unsync());
    /// # let _ = layer;
    /// ```
    pub fn new(into_body: F) -> Self {
        Self {
            policy: Arc::new(RetryPolicy::default().grpc(GrpcPolicy::default())),
            replay_limit: DEFAULT_REPLAY_LIMIT,
            target: None,
            into_body,
        }
    }

    /// Uses `policy`; one without gRPC rules gets [`GrpcPolicy::default`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use http_body_util::{combinators::UnsyncBoxBody, BodyExt};
    /// use tower_http_retry::classify::RetryClass;
    /// use tower_http_retry::grpc::{GrpcCode, GrpcPolicy, GrpcRetryLayer};
    /// use tower_http_retry::body::ReplayBody;
    /// use tower_http_retry::{BoxError, RetryPolicy};
    ///
    /// type ClientBody = UnsyncBoxBody<Bytes, BoxError>;
    /// let policy = RetryPolicy::default()
    ///     .deadline(Duration::from_secs(2))
    ///     .grpc(GrpcPolicy::new().retry_on(GrpcCode::Aborted, RetryClass::Transient));
    /// let layer = GrpcRetryLayer::new(|body: ReplayBody<ClientBody>| body.boxed_unsync())
    ///     .policy(policy);
    /// # let _ = layer;
    /// ```
    pub fn policy(mut self, mut policy: RetryPolicy) -> Self {
        if policy.grpc.is_none() {
            policy = policy.grpc(GrpcPolicy::default());
        }
        self.policy = Arc::new(policy);
        self
    }

    /// Records up to `bytes` of each request body; a longer one is sent once and not retried.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::{combinators::UnsyncBoxBody, BodyExt};
    /// use tower_http_retry::grpc::GrpcRetryLayer;
    /// use tower_http_retry::body::ReplayBody;
    /// use tower_http_retry::BoxError;
    ///
    /// type ClientBody = UnsyncBoxBody<Bytes, BoxError>;
    /// let layer = GrpcRetryLayer::new(|body: ReplayBody<ClientBody>| body.boxed_unsync())
    ///     .replay_limit(1 << 20);
    /// # let _ = layer;
    /// ```
    pub fn replay_limit(mut self, bytes: u64) -> Self {
        self.replay_limit = bytes;
        self
    }

    /// The channel's target, for the `grpc.target` label of gRFC A96's metrics (`dns:///svc:50051`).
    /// Without it the label is the request URI's authority, or `unknown` for tonic's path-only URIs.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::{combinators::UnsyncBoxBody, BodyExt};
    /// use tower_http_retry::grpc::GrpcRetryLayer;
    /// use tower_http_retry::body::ReplayBody;
    /// use tower_http_retry::BoxError;
    ///
    /// type ClientBody = UnsyncBoxBody<Bytes, BoxError>;
    /// let layer = GrpcRetryLayer::new(|body: ReplayBody<ClientBody>| body.boxed_unsync())
    ///     .target("dns:///payments:50051");
    /// // Not printable ASCII: ignored, as if no target were given.
    /// let unlabelled = GrpcRetryLayer::new(|body: ReplayBody<ClientBody>| body.boxed_unsync())
    ///     .target("payments\n");
    /// # let _ = (layer, unlabelled);
    /// ```
    ///
    /// A target that is not printable ASCII cannot be a label value: it is ignored, and the label
    /// falls back as without one (never a panic on a configured string).
    pub fn target(mut self, target: &str) -> Self {
        self.target = HeaderValue::from_str(target).ok();
        self
    }
}

impl<F> fmt::Debug for GrpcRetryLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcRetryLayer")
            .field("policy", &self.policy)
            .field("replay_limit", &self.replay_limit)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl<S, F: Clone> Layer<S> for GrpcRetryLayer<F> {
    type Service = GrpcStatus<ReplayBodyService<Retry<IntoBody<S, F>>>>;

    fn layer(&self, inner: S) -> Self::Service {
        let into_body = IntoBody {
            inner,
            into_body: self.into_body.clone(),
        };
        let retry = Retry::from_shared(into_body, self.policy.clone(), NoCheck);
        let replay = ReplayBodyLayer::new().limit(self.replay_limit).layer(retry);
        GrpcStatus::new(replay, self.target.clone())
    }
}

/// Hands each attempt's recorded body to the client in the client's body type. Made by
/// [`GrpcRetryLayer`].
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty};
/// use tower::{service_fn, Layer, ServiceExt};
/// use tower_http_retry::grpc::{GrpcRetryLayer, IntoBody};
/// use tower_http_retry::body::ReplayBody;
/// use tower_http_retry::BoxError;
///
/// type ClientBody = UnsyncBoxBody<Bytes, BoxError>;
/// let channel = service_fn(|_: Request<ClientBody>| async {
///     Ok::<_, BoxError>(Response::new(Empty::<Bytes>::new()))
/// });
/// let into_body = |body: ReplayBody<ClientBody>| body.boxed_unsync();
/// let client = GrpcRetryLayer::new(into_body).layer(channel);
/// let inner: &IntoBody<_, _> = client.get_ref().get_ref().get_ref();
/// # let _ = inner;
/// ```
#[derive(Clone, Debug)]
pub struct IntoBody<S, F> {
    inner: S,
    into_body: F,
}

impl<S, F> IntoBody<S, F> {
    /// The client.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, F, B, C> Service<Request<ReplayBody<B>>> for IntoBody<S, F>
where
    S: Service<Request<C>>,
    F: Fn(ReplayBody<B>) -> C,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReplayBody<B>>) -> S::Future {
        self.inner.call(request.map(&self.into_body))
    }
}
