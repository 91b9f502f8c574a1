//! A 408 made locally by tower-http's `TimeoutLayer` inside the retry: the server did run the request,
//! so an unkeyed POST must not be sent again; idempotent and keyed requests still are.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_http::timeout::TimeoutLayer;
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::history::StopReason;
use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};

/// Runs `method` once through retry → tower-http timeout (100 ms, answering 408) → a server that
/// takes 1 s; returns the final status, how many times the server ran it, and the history.
async fn through_timeout(method: Method, key: Option<&str>) -> (StatusCode, usize, RetryHistory) {
    let executed = Arc::new(AtomicUsize::new(0));
    let count = executed.clone();
    let server = service_fn(move |_: Request<Full<Bytes>>| {
        // The side effect happens as soon as the request arrives; the answer is slow.
        count.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"charged"))))
        }
    });
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(
            RetryPolicy::default()
                .no_retry_budget()
                .backoff(Backoff::constant(Duration::from_millis(10)).jitter(Jitter::None)),
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(100),
        ))
        .service(server);
    let mut request = Request::builder()
        .method(method)
        .uri("http://pay.test/charges");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = client
        .oneshot(request.body(Full::new(Bytes::from_static(b"{}"))).unwrap())
        .await
        .unwrap();
    let history = response
        .extensions()
        .get::<RetryHistory>()
        .cloned()
        .unwrap_or_default();
    (response.status(), executed.load(Ordering::SeqCst), history)
}

#[tokio::test(start_paused = true)]
async fn an_unkeyed_post_answered_408_by_a_local_timeout_runs_once() {
    for method in [Method::POST, Method::PATCH] {
        let (status, executed, history) = through_timeout(method.clone(), None).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{method}");
        assert_eq!(
            executed, 1,
            "{method}: the server ran it; a re-send runs it again"
        );
        assert_eq!(history.stop_reason(), StopReason::NotIdempotent, "{method}");
    }
}

#[tokio::test(start_paused = true)]
async fn idempotent_and_keyed_requests_are_still_retried_on_408() {
    let (status, executed, _) = through_timeout(Method::GET, None).await;
    assert_eq!((status, executed), (StatusCode::REQUEST_TIMEOUT, 4));
    let (status, executed, _) = through_timeout(Method::POST, Some("k-1")).await;
    assert_eq!((status, executed), (StatusCode::REQUEST_TIMEOUT, 4));
}
