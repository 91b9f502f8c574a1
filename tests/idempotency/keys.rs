//! Idempotency keys and the before-retry hook, against a real hyper server on 127.0.0.1.

use crate::durations::ms;
use crate::history::history;
use crate::server;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use server::{Received, Reply, Server};
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::classify::{Decision, RetryClass};
use tower_http_retry::history::{AttemptOutcome, StopReason};
use tower_http_retry::{Retry, RetryLayer, RetryPolicy};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Retries quickly and injects keys into POST and PATCH.
fn keyed() -> RetryPolicy {
    RetryPolicy::default()
        .backoff(Backoff::constant(ms(5)).jitter(Jitter::None))
        .inject_idempotency_keys()
}

fn client(policy: RetryPolicy) -> Retry<HttpClient> {
    let client = Client::builder(TokioExecutor::new()).build_http();
    ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(client)
}

fn request(method: Method, url: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from_static(b"{\"amount\": 100}")))
        .unwrap()
}

/// The one key every received request carried (fails if any differ or one is missing).
fn the_key(received: &[Received], header: &str) -> HeaderValue {
    let key = received[0].headers.get(header).expect("a key").clone();
    for r in received {
        assert_eq!(r.headers.get_all(header).iter().collect::<Vec<_>>(), [&key]);
    }
    key
}

fn is_uuid_v4(key: &HeaderValue) -> bool {
    let uuid = uuid::Uuid::parse_str(key.to_str().unwrap()).unwrap();
    uuid.get_version() == Some(uuid::Version::Random)
}

#[tokio::test]
async fn an_injected_key_is_sent_verbatim_on_every_retry() {
    let server = Server::start([(
        "/charges",
        vec![Reply::status(503), Reply::Reset, Reply::status(201)],
    )])
    .await;
    let response = client(keyed())
        .oneshot(request(Method::POST, &server.url("/charges")))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    let received = server.received();
    assert_eq!(
        received.len(),
        3,
        "a keyed POST is retried after a 503 and a reset"
    );
    let key = the_key(&received, "idempotency-key");
    assert!(is_uuid_v4(&key), "{key:?}");
    let history = history(&response);
    assert_eq!(history.idempotency_key(), Some(&key));
    assert!(!history.is_replayed());
    assert_eq!(history.attempt_count(), 3);
}

#[tokio::test]
async fn every_call_gets_its_own_key() {
    let server = Server::start([("/charges", vec![Reply::status(201)])]).await;
    let service = client(keyed());
    for _ in 0..3 {
        service
            .clone()
            .oneshot(request(Method::POST, &server.url("/charges")))
            .await
            .unwrap();
    }
    let mut keys: Vec<_> = server
        .received()
        .iter()
        .map(|r| r.headers["idempotency-key"].clone())
        .collect();
    keys.dedup();
    assert_eq!(keys.len(), 3);
}

#[tokio::test]
async fn a_key_the_caller_set_is_never_replaced() {
    let server = Server::start([("/charges", vec![Reply::status(500), Reply::status(201)])]).await;
    let mut charge = request(Method::POST, &server.url("/charges"));
    charge
        .headers_mut()
        .insert("idempotency-key", HeaderValue::from_static("order-42"));
    let response = client(keyed()).oneshot(charge).await.unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_eq!(the_key(&received, "idempotency-key"), "order-42");
    assert_eq!(history(&response).idempotency_key().unwrap(), "order-42");
}

#[tokio::test]
async fn the_configured_header_is_the_one_set_and_the_one_recognised() {
    let server = Server::start([("/charges", vec![Reply::status(500), Reply::status(201)])]).await;
    let policy = keyed().idempotency_header(HeaderName::from_static("x-idempotency-key"));
    let response = client(policy)
        .oneshot(request(Method::PATCH, &server.url("/charges")))
        .await
        .unwrap();

    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "the injected key makes the PATCH retryable"
    );
    let received = server.received();
    assert_eq!(received.len(), 2);
    the_key(&received, "x-idempotency-key");
    assert!(received
        .iter()
        .all(|r| !r.headers.contains_key("idempotency-key")));
}

#[tokio::test]
async fn methods_outside_the_list_get_no_key() {
    let server = Server::start([
        ("/post", vec![Reply::status(500), Reply::status(201)]),
        ("/delete", vec![Reply::status(500), Reply::status(204)]),
    ])
    .await;
    let service = client(keyed().inject_idempotency_keys_for([Method::DELETE]));
    let post = service
        .clone()
        .oneshot(request(Method::POST, &server.url("/post")))
        .await
        .unwrap();
    let delete = service
        .oneshot(request(Method::DELETE, &server.url("/delete")))
        .await
        .unwrap();

    assert_eq!(post.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(history(&post).stop_reason(), StopReason::NotIdempotent);
    assert_eq!(history(&post).idempotency_key(), None);
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    let received = server.received();
    assert!(!received[0].headers.contains_key("idempotency-key"));
    assert!(is_uuid_v4(&the_key(&received[1..], "idempotency-key")));
}

#[tokio::test]
async fn in_flight_409_is_retried_with_the_same_key_and_the_replay_reported() {
    let server = Server::start([(
        "/charges",
        vec![
            Reply::status(409).header("retry-after", "0"),
            Reply::status(409).header("retry-after", "0"),
            Reply::status(201).header("x-idempotency-replayed", "true"),
        ],
    )])
    .await;
    let response = client(keyed())
        .oneshot(request(Method::POST, &server.url("/charges")))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    let received = server.received();
    assert_eq!(received.len(), 3);
    let key = the_key(&received, "idempotency-key");
    let history = history(&response);
    for attempt in &history.attempts()[..2] {
        assert_eq!(attempt.decision, Decision::Retry(RetryClass::Throttling));
        assert_eq!(attempt.retry_after, Some(Duration::ZERO));
    }
    assert!(history.is_replayed());
    assert_eq!(history.idempotency_key(), Some(&key));
}

#[tokio::test]
async fn a_422_for_a_reused_key_is_not_retried() {
    let server = Server::start([("/charges", vec![Reply::status(422), Reply::status(201)])]).await;
    let response = client(keyed())
        .oneshot(request(Method::POST, &server.url("/charges")))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(server.hits("/charges"), 1);
    assert_eq!(history(&response).stop_reason(), StopReason::Finished);
}

#[tokio::test]
async fn a_keyed_first_answer_carries_its_key_and_replay_mark() {
    let server = Server::start([
        ("/fresh", vec![Reply::status(201)]),
        (
            "/again",
            vec![Reply::status(200).header("x-idempotency-replayed", "true")],
        ),
    ])
    .await;
    let service = client(keyed());
    let fresh = service
        .clone()
        .oneshot(request(Method::POST, &server.url("/fresh")))
        .await
        .unwrap();
    let again = service
        .oneshot(request(Method::POST, &server.url("/again")))
        .await
        .unwrap();

    let received = server.received();
    for (response, sent) in [(&fresh, &received[0]), (&again, &received[1])] {
        let history = history(response);
        assert_eq!(history.attempt_count(), 1);
        assert_eq!(history.stop_reason(), StopReason::Finished);
        assert_eq!(
            history.idempotency_key(),
            sent.headers.get("idempotency-key")
        );
    }
    assert!(!history(&fresh).is_replayed());
    assert!(history(&again).is_replayed());
}

#[tokio::test]
async fn a_custom_replay_header_is_recognised() {
    let server = Server::start([(
        "/charges",
        vec![
            Reply::status(503),
            Reply::status(201).header("idempotent-replayed", "true"),
        ],
    )])
    .await;
    let policy =
        keyed().idempotency_replayed_header(HeaderName::from_static("idempotent-replayed"));
    let response = client(policy)
        .oneshot(request(Method::POST, &server.url("/charges")))
        .await
        .unwrap();
    assert!(history(&response).is_replayed());
}

#[tokio::test]
async fn a_keyed_call_that_fails_reports_its_key_in_the_error() {
    let server = Server::start([("/charges", vec![Reply::Reset])]).await;
    let error = client(keyed().max_attempts(3))
        .oneshot(request(Method::POST, &server.url("/charges")))
        .await
        .unwrap_err();

    assert!(error.is_attempts_exhausted());
    let received = server.received();
    assert_eq!(received.len(), 3);
    let key = the_key(&received, "idempotency-key");
    assert_eq!(error.history().idempotency_key(), Some(&key));
    assert!(!error.history().is_replayed());
    assert!(
        !format!("{error:?}").contains(key.to_str().unwrap()),
        "Debug output hides the key"
    );
}

#[tokio::test]
async fn the_before_retry_hook_rewrites_each_retry_but_not_the_key() {
    let server = Server::start([(
        "/charges",
        vec![Reply::status(503), Reply::status(503), Reply::status(201)],
    )])
    .await;
    let policy = keyed().before_retry(|head, attempt| {
        head.headers.insert("x-attempt", HeaderValue::from(attempt));
        head.headers
            .append("x-signature", HeaderValue::from_static("re-signed"));
        head.headers.insert(
            "idempotency-key",
            HeaderValue::from_static("forced-new-key"),
        );
    });
    let response = client(policy)
        .oneshot(request(Method::POST, &server.url("/charges")))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    let received = server.received();
    let key = the_key(&received, "idempotency-key");
    assert!(is_uuid_v4(&key));
    assert_eq!(history(&response).idempotency_key(), Some(&key));
    assert!(
        !received[0].headers.contains_key("x-attempt"),
        "the first attempt is the caller's"
    );
    for (sent, attempt) in received[1..].iter().zip(["2", "3"]) {
        assert_eq!(sent.headers["x-attempt"], attempt);
        assert_eq!(
            sent.headers.get_all("x-signature").iter().count(),
            1,
            "each retry starts from the first attempt's head"
        );
    }
    assert!(matches!(
        history(&response).attempts()[2].outcome,
        AttemptOutcome::Status(s) if s == StatusCode::CREATED
    ));
}

/// A blank key is no key: a server that ignores blank keys would run the retried POST twice.
#[tokio::test]
async fn a_blank_key_makes_no_request_idempotent() {
    for blank in ["", " ", "\t  "] {
        let server =
            Server::start([("/charges", vec![Reply::status(500), Reply::status(201)])]).await;
        let policy = RetryPolicy::default().backoff(Backoff::constant(ms(5)).jitter(Jitter::None));
        let mut request = request(Method::POST, &server.url("/charges"));
        request
            .headers_mut()
            .insert("idempotency-key", HeaderValue::from_str(blank).unwrap());
        let response = client(policy).oneshot(request).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{blank:?}"
        );
        assert_eq!(server.received().len(), 1, "{blank:?}: sent once");
        assert_eq!(history(&response).stop_reason(), StopReason::NotIdempotent);
        assert_eq!(history(&response).idempotency_key(), None, "{blank:?}");
    }
}

/// With injection on, a blank key is replaced by a real one, the same on every attempt.
#[tokio::test]
async fn injection_replaces_a_blank_key() {
    for blank in ["", "   "] {
        let server =
            Server::start([("/charges", vec![Reply::status(500), Reply::status(201)])]).await;
        let mut request = request(Method::POST, &server.url("/charges"));
        request
            .headers_mut()
            .insert("idempotency-key", HeaderValue::from_str(blank).unwrap());
        let response = client(keyed()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{blank:?}");
        let received = server.received();
        assert_eq!(received.len(), 2, "{blank:?}");
        let key = the_key(&received, "idempotency-key");
        assert!(is_uuid_v4(&key), "{blank:?}: {key:?}");
        assert_eq!(history(&response).idempotency_key(), Some(&key));
    }
}
