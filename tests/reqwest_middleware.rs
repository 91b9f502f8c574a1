//! reqwest-middleware: a real `reqwest::Client` in a `ClientWithMiddleware` stack with
//! `RetryMiddleware`, against the scripted hyper server on 127.0.0.1.

#![cfg(feature = "reqwest-middleware")]

use retry_test_support::{durations, server};

use durations::ms;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http::{Extensions, StatusCode};
use http_body_util::{BodyExt, Full};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use server::{Reply, Server};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::body::NotReplayable;
use tower_http_retry::history::{AttemptOutcome, StopReason, WaitReason};
use tower_http_retry::reqwest::RetryMiddleware;
use tower_http_retry::{CallSettings, RetryHistory, RetryPolicy};

fn quick() -> RetryPolicy {
    RetryPolicy::default()
        .no_retry_budget()
        .backoff(Backoff::constant(ms(5)).jitter(Jitter::None))
}

/// The stack the README shows.
fn client(policy: RetryPolicy) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(RetryMiddleware::new(policy))
        .build()
}

fn history(response: &reqwest::Response) -> RetryHistory {
    response
        .extensions()
        .get::<RetryHistory>()
        .expect("a history on the response")
        .clone()
}

#[tokio::test]
async fn a_503_then_200_is_retried_and_the_history_is_on_the_response() {
    let server = Server::start([(
        "/items",
        vec![Reply::status(503), Reply::status(200).body("items")],
    )])
    .await;

    let response = client(quick())
        .get(server.url("/items"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let history = history(&response);
    assert_eq!(history.attempt_count(), 2);
    assert_eq!(
        history.attempts()[0].outcome,
        AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE)
    );
    assert_eq!(response.text().await.unwrap(), "items");
    assert_eq!(server.hits("/items"), 2);
}

#[tokio::test]
async fn the_response_keeps_the_url_it_came_from() {
    let server = Server::start([("/items", vec![Reply::status(503), Reply::status(200)])]).await;

    let response = client(quick())
        .get(server.url("/items"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.url().as_str(), server.url("/items"));
}

#[tokio::test]
async fn a_spent_rate_limit_is_waited_for_until_its_fractional_reset() {
    let server = Server::start([(
        "/search",
        vec![
            Reply::status(429)
                .header("x-ratelimit-remaining", 0)
                .header("x-ratelimit-reset", "0.05"),
            Reply::status(200),
        ],
    )])
    .await;

    let started = Instant::now();
    let response = client(quick())
        .get(server.url("/search"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= ms(50), "{:?}", started.elapsed());
    let wait = history(&response).attempts()[0].wait.unwrap();
    assert_eq!(wait.reason, WaitReason::RateLimitReset);
    assert_eq!(wait.duration, ms(50));
}

#[tokio::test]
async fn a_post_without_an_idempotency_key_is_not_retried_on_a_503() {
    let server = Server::start([("/orders", vec![Reply::status(503), Reply::status(201)])]).await;

    let response = client(quick())
        .post(server.url("/orders"))
        .body("{\"sku\": 7}")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(history(&response).attempt_count(), 1);
    assert_eq!(server.hits("/orders"), 1);
}

#[tokio::test]
async fn a_post_with_an_idempotency_key_is_retried_with_its_body_and_key() {
    let server = Server::start([("/orders", vec![Reply::status(503), Reply::status(201)])]).await;

    let response = client(quick())
        .post(server.url("/orders"))
        .header("idempotency-key", "order-7")
        .body("{\"sku\": 7}")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    let received = server.received();
    assert_eq!(received.len(), 2);
    for r in received {
        assert_eq!(r.body, "{\"sku\": 7}");
        assert_eq!(r.headers["idempotency-key"], "order-7");
    }
}

#[tokio::test]
async fn call_settings_put_on_the_call_apply_to_it() {
    let server = Server::start([("/items", vec![Reply::status(503), Reply::status(200)])]).await;

    let response = client(quick())
        .get(server.url("/items"))
        .with_extension(CallSettings::new().no_retries())
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.hits("/items"), 1);
}

#[tokio::test]
async fn a_streamed_body_is_sent_once_and_the_history_says_why() {
    let server = Server::start([("/upload", vec![Reply::status(503), Reply::status(200)])]).await;
    let streamed = reqwest::Body::wrap(
        Full::new(Bytes::from_static(b"chunk")).map_err(|e: Infallible| match e {}),
    );

    let response = client(quick())
        .put(server.url("/upload"))
        .body(streamed)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        history(&response).stop_reason(),
        StopReason::BodyNotReplayable(NotReplayable::Declined)
    );
    assert_eq!(server.hits("/upload"), 1);
}

#[tokio::test]
async fn a_call_that_fails_returns_this_crates_error_with_its_history() {
    // A port nothing listens on: every attempt is a refused connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/items", listener.local_addr().unwrap());
    drop(listener);

    let error = client(quick().max_attempts(3))
        .get(url)
        .send()
        .await
        .unwrap_err();

    let reqwest_middleware::Error::Middleware(error) = error else {
        panic!("not this crate's error: {error:?}");
    };
    let error = error
        .downcast_ref::<tower_http_retry::Error>()
        .expect("this crate's error");
    assert!(error.is_attempts_exhausted());
    assert_eq!(error.history().attempt_count(), 3);
    let source = error.inner().unwrap();
    assert!(source
        .downcast_ref::<reqwest::Error>()
        .unwrap()
        .is_connect());
}

/// Counts the attempts that reach it in the call's extensions.
struct CountAttempts;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Attempts(u32);

type MiddlewareFuture<'a> =
    Pin<Box<dyn Future<Output = reqwest_middleware::Result<reqwest::Response>> + Send + 'a>>;

impl Middleware for CountAttempts {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        request: reqwest::Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> MiddlewareFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let count = extensions.get::<Attempts>().map_or(0, |a| a.0);
        extensions.insert(Attempts(count + 1));
        next.run(request, extensions)
    }
}

/// Keeps what the call's extensions hold once the rest of the stack has answered.
struct SeeAttempts(Arc<Mutex<Option<Attempts>>>);

impl Middleware for SeeAttempts {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        request: reqwest::Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> MiddlewareFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let response = next.run(request, extensions).await;
            *self.0.lock().unwrap() = extensions.get::<Attempts>().copied();
            response
        })
    }
}

#[tokio::test]
async fn later_middlewares_run_on_every_attempt_and_their_extensions_reach_the_caller() {
    let server = Server::start([(
        "/items",
        vec![Reply::status(503), Reply::status(502), Reply::status(200)],
    )])
    .await;
    let seen = Arc::new(Mutex::new(None));
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(SeeAttempts(seen.clone()))
        .with(RetryMiddleware::new(quick()))
        .with(CountAttempts)
        .build();

    let response = client.get(server.url("/items")).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(*seen.lock().unwrap(), Some(Attempts(3)));
}
