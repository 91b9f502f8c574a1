//! The in-memory contenders: the bare service, `tower::retry` with a hand-written HTTP policy,
//! tower-resilience-retry, and tower-http-retry, each a `Service<Request<Full<Bytes>>>` over [`Answer`].

use std::convert::Infallible;
use std::fmt;
use std::future::{ready, Ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use tower::retry::Policy;
use tower::{Layer, Service, ServiceExt};
use tower_http_retry::{RetryLayer, RetryPolicy};

use crate::workload::Answer;

/// The request type of every in-memory contender.
pub type Req = Request<Full<Bytes>>;
/// The response type of every in-memory contender.
pub type Res = Response<Full<Bytes>>;

/// Attempts in all, the first included: tower-http-retry's default, given to every contender.
pub const MAX_ATTEMPTS: u32 = 4;

/// The statuses tower-http-retry retries by default.
fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

fn is_idempotent(method: &Method) -> bool {
    tower_http_retry::classify::is_idempotent_method(method)
}

/// A copy of a request with a `Full<Bytes>` body, as a `tower::retry` policy or a `Clone` request type
/// has to make it: head cloned, body shared.
pub fn clone_request(request: &Req) -> Req {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    copy
}

/// A `tower::retry::Policy` that does what tower-http-retry's default table does for responses:
/// 429 for any method, 408 500 502 503 504 for idempotent methods, failures for idempotent methods,
/// at most [`MAX_ATTEMPTS`] attempts, and no wait (the benchmarks measure the layer, not the sleep).
#[derive(Clone, Debug)]
pub struct HttpPolicy {
    retries_left: u32,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            retries_left: MAX_ATTEMPTS - 1,
        }
    }
}

impl<ResB, E> Policy<Req, Response<ResB>, E> for HttpPolicy {
    type Future = Ready<()>;

    fn retry(
        &mut self,
        request: &mut Req,
        result: &mut Result<Response<ResB>, E>,
    ) -> Option<Ready<()>> {
        let retryable = match result {
            Ok(response) => match response.status().as_u16() {
                429 => true,
                _ => is_retryable_status(response.status()) && is_idempotent(request.method()),
            },
            Err(_) => is_idempotent(request.method()),
        };
        if !retryable || self.retries_left == 0 {
            return None;
        }
        self.retries_left -= 1;
        Some(ready(()))
    }

    fn clone_request(&mut self, request: &Req) -> Option<Req> {
        Some(clone_request(request))
    }
}

/// `tower::retry` with [`HttpPolicy`].
pub fn tower_retry<S>(inner: S) -> tower::retry::Retry<HttpPolicy, S> {
    tower::retry::RetryLayer::new(HttpPolicy::default()).layer(inner)
}

/// tower-http-retry with `policy`.
pub fn tower_http_retry(inner: Answer, policy: RetryPolicy) -> tower_http_retry::Retry<Answer> {
    RetryLayer::new(policy).layer(inner)
}

/// The bare service, after a copy of each request is made and dropped: the least any retry layer that keeps
/// a copy of the request for a later attempt can cost. Not a retry layer; the floor under them.
pub fn bare_with_request_copy(
    inner: Answer,
) -> impl Service<Req, Response = Res, Error = Infallible> + Clone {
    inner.map_request(|request: Req| {
        std::hint::black_box(clone_request(&request));
        request
    })
}

/// tower-resilience-retry needs a `Clone` request, and `http::Request` is not one: its users wrap it.
pub struct ClonableRequest(pub Req);

impl Clone for ClonableRequest {
    fn clone(&self) -> Self {
        Self(clone_request(&self.0))
    }
}

impl fmt::Debug for ClonableRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// tower-resilience-retry at [`MAX_ATTEMPTS`] attempts, retrying the statuses tower-http-retry retries
/// (its response predicate cannot see the request, so it retries them for every method), waiting
/// `backoff` between attempts; wrapped so that it takes and passes on plain `http::Request`s.
pub fn tower_resilience_retry(
    inner: Answer,
    backoff: Duration,
) -> impl Service<Req, Response = Res, Error = Infallible, Future: Send> + Clone + Send {
    let layer = tower_resilience_retry::RetryLayer::<ClonableRequest, Res, Infallible>::builder()
        .max_attempts(MAX_ATTEMPTS as usize)
        .fixed_backoff(backoff)
        .retry_on_response(|response: &Res| is_retryable_status(response.status()))
        .build();
    let unwrap: fn(ClonableRequest) -> Req = |request| request.0;
    let wrap: fn(Req) -> ClonableRequest = ClonableRequest;
    layer.layer(inner.map_request(unwrap)).map_request(wrap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Script, Workload};
    use tower_http_retry::backoff::Backoff;

    async fn call<S, B>(service: &mut S, request: Req) -> Response<B>
    where
        S: Service<Req, Response = Response<B>>,
        S::Error: fmt::Debug,
    {
        service.ready().await.unwrap().call(request).await.unwrap()
    }

    #[tokio::test]
    async fn every_contender_gets_through_two_503s_with_three_calls() {
        let workload = Workload::in_memory();
        let answer = || Answer::new(Script::TwoUnavailableThenOk, &workload);

        let inner = answer();
        let response = call(&mut tower_retry(inner.clone()), workload.request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(inner.counters().calls(), 3);

        let inner = answer();
        let policy = RetryPolicy::default().backoff(Backoff::none());
        let response = call(
            &mut tower_http_retry(inner.clone(), policy),
            workload.request(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(inner.counters().calls(), 3);

        let inner = answer();
        let mut service = tower_resilience_retry(inner.clone(), Duration::ZERO);
        let response = call(&mut service, workload.request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(inner.counters().calls(), 3);
        assert_eq!(inner.counters().copied_bytes(), 0);
    }

    #[tokio::test]
    async fn the_tower_policy_stops_where_the_default_table_stops() {
        let workload = Workload::in_memory();
        let mut policy = HttpPolicy::default();
        let mut request = workload.request();
        let mut unavailable = Ok::<_, Infallible>(
            Response::builder()
                .status(503)
                .body(Full::<Bytes>::default())
                .unwrap(),
        );
        for _ in 1..MAX_ATTEMPTS {
            assert!(policy.retry(&mut request, &mut unavailable).is_some());
        }
        assert!(policy.retry(&mut request, &mut unavailable).is_none());

        let mut post = workload.request();
        *post.method_mut() = Method::POST;
        let mut fresh = HttpPolicy::default();
        assert!(fresh.retry(&mut post, &mut unavailable).is_none());
        let mut throttled = Ok::<_, Infallible>(
            Response::builder()
                .status(429)
                .body(Full::<Bytes>::default())
                .unwrap(),
        );
        assert!(fresh.retry(&mut post, &mut throttled).is_some());
    }

    #[test]
    fn a_cloned_request_shares_its_body_and_copies_its_head() {
        let workload = Workload::in_memory();
        let request = workload.request();
        let copy = clone_request(&request);
        assert_eq!(copy.headers(), request.headers());
        assert_eq!(copy.uri(), request.uri());
        assert_eq!(copy.method(), request.method());
    }
}
