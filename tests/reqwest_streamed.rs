//! reqwest with a streamed `reqwest::Body` and no `ReplayBodyLayer`: the request cannot be retried,
//! and the process is told so once, naming the layer. A binary of its own: the warning is once per
//! process, so no other test may send such a body first.

#![cfg(feature = "reqwest")]

use retry_test_support::{captured, server};

use std::convert::Infallible;

use bytes::Bytes;
use captured::capture;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use server::{Reply, Server};
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::body::NotReplayable;
use tower_http_retry::history::StopReason;
use tower_http_retry::reqwest::ReqwestService;
use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};

/// A body reqwest can only stream: no bytes it could copy for a second attempt.
fn streamed() -> reqwest::Body {
    reqwest::Body::wrap(
        Full::new(Bytes::from_static(b"{\"n\": 1}")).map_err(|e: Infallible| match e {}),
    )
}

#[tokio::test]
async fn a_streamed_reqwest_body_without_the_replay_layer_is_named_once_and_in_the_history() {
    let server = Server::start([("/upload", vec![Reply::status(503)])]).await;
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::default().no_retry_budget()))
        .service(ReqwestService::new(reqwest::Client::new()));
    let (logs, _guard) = capture(tracing::Level::WARN);

    for _ in 0..2 {
        let request = Request::put(server.url("/upload"))
            .body(streamed())
            .unwrap();
        let response = client.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let history = response.extensions().get::<RetryHistory>().unwrap();
        assert_eq!(history.attempt_count(), 1, "not retried");
        assert_eq!(
            history.stop_reason(),
            StopReason::BodyNotReplayable(NotReplayable::Declined)
        );
        let line = history.to_string();
        assert!(
            line.starts_with("503: the body could not be replayed")
                && line.contains("ReplayBodyLayer"),
            "{line}"
        );
    }

    // Besides the give-up warning (at most one per host per 10 s), one line of its own.
    let text = logs.text();
    let warnings: Vec<_> = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("streamed reqwest::Body"))
        .collect();
    assert_eq!(warnings.len(), 1, "once per process: {text}");
    assert!(warnings[0].contains("ReplayBodyLayer"), "{text}");
    assert_eq!(server.hits("/upload"), 2);
}
