//! When a response that the first attempt settled carries a history for its key, and that a key is
//! reported whenever a history is made: in memory, under tokio's paused clock.

use crate::history::history;
use crate::script;

use std::io;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::Full;
use script::{status, with_header, Script, Step};
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::Backoff;
use tower_http_retry::body::ResponseBody;
use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};

fn request(method: Method, key: Option<&'static str>) -> Request<Full<Bytes>> {
    let mut request = Request::builder()
        .method(method)
        .uri("http://api.test/v1/orders/7")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    if let Some(key) = key {
        request
            .headers_mut()
            .insert("idempotency-key", HeaderValue::from_static(key));
    }
    request
}

async fn send(
    policy: RetryPolicy,
    steps: impl IntoIterator<Item = Step>,
    request: Request<Full<Bytes>>,
) -> Result<http::Response<ResponseBody<Full<Bytes>>>, tower_http_retry::Error> {
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy.backoff(Backoff::none())))
        .service(Script::new(steps));
    service.oneshot(request).await
}

#[tokio::test(start_paused = true)]
async fn an_idempotent_request_settled_at_once_passes_through_with_its_own_key() {
    // The caller's key on an idempotent method changes nothing the caller does not already know.
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let response = send(
            RetryPolicy::default(),
            [status(200)],
            request(method.clone(), Some("order-7")),
        )
        .await
        .unwrap();
        assert!(
            response.extensions().get::<RetryHistory>().is_none(),
            "{method}"
        );
    }
    // Even with injection on for the method: the key was the caller's.
    let injects_put = RetryPolicy::default().inject_idempotency_keys_for([Method::PUT]);
    let response = send(
        injects_put,
        [status(200)],
        request(Method::PUT, Some("order-7")),
    )
    .await
    .unwrap();
    assert!(response.extensions().get::<RetryHistory>().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_key_the_layer_set_is_reported_even_on_an_idempotent_method() {
    let injects_put = RetryPolicy::default().inject_idempotency_keys_for([Method::PUT]);
    let response = send(injects_put, [status(200)], request(Method::PUT, None))
        .await
        .unwrap();
    let history = history(&response);
    assert_eq!(history.attempt_count(), 1);
    assert!(history.idempotency_key().is_some());
}

#[tokio::test(start_paused = true)]
async fn a_keyed_post_settled_at_once_reports_its_key_and_the_replay() {
    let replayed = with_header(201, "x-idempotency-replayed", "true");
    let response = send(
        RetryPolicy::default(),
        [replayed],
        request(Method::POST, Some("order-7")),
    )
    .await
    .unwrap();
    let history = history(&response);
    assert_eq!(history.idempotency_key().unwrap(), "order-7");
    assert!(history.is_replayed());
    // Without a key, nothing to report.
    let response = send(
        RetryPolicy::default(),
        [status(201)],
        request(Method::POST, None),
    )
    .await
    .unwrap();
    assert!(response.extensions().get::<RetryHistory>().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_retried_or_failed_idempotent_call_reports_the_key_it_carried() {
    let response = send(
        RetryPolicy::default(),
        [status(503), status(200)],
        request(Method::GET, Some("order-7")),
    )
    .await
    .unwrap();
    assert_eq!(history(&response).attempt_count(), 2);
    assert_eq!(history(&response).idempotency_key().unwrap(), "order-7");

    let error = send(
        RetryPolicy::default().max_attempts(2),
        [
            Step::Fail(io::ErrorKind::ConnectionReset),
            Step::Fail(io::ErrorKind::ConnectionReset),
        ],
        request(Method::PUT, Some("order-7")),
    )
    .await
    .unwrap_err();
    assert!(error.is_attempts_exhausted());
    assert_eq!(error.history().idempotency_key().unwrap(), "order-7");
    // A blank value is no key, there as anywhere.
    let response = send(
        RetryPolicy::default(),
        [status(503), status(200)],
        request(Method::GET, Some(" ")),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(history(&response).idempotency_key(), None);
}
