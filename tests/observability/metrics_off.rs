//! Without the `metrics` feature: every function of `tower_http_retry::metrics` is still there, so
//! code written for the feature compiles without it, and nothing reaches a recorder.
#![cfg(not(feature = "metrics"))]

use crate::script;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use metrics_util::debugging::DebuggingRecorder;
use script::{status, Script};
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::{metrics, RetryLayer, RetryPolicy};

#[test]
fn without_the_feature_describe_compiles_and_nothing_is_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    ::metrics::with_local_recorder(&recorder, || {
        metrics::describe();
        runtime.block_on(async {
            let policy = RetryPolicy::default().no_retry_budget().backoff(
                Backoff::constant(std::time::Duration::from_millis(10)).jitter(Jitter::None),
            );
            let service = ServiceBuilder::new()
                .layer(RetryLayer::new(policy))
                .service(Script::new([status(503), status(200)]));
            let request = Request::get("http://api.test/items")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = service.oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200, "a retry was made");
        });
    });
    assert!(snapshotter.snapshot().into_vec().is_empty());
}
