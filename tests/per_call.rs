//! Per-call settings (`CallSettings`) through the layer: each one changes its own call and no other,
//! with the documented precedence, under tokio's paused clock.

use retry_test_support::{durations, script};

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use script::{status, Script, Step};
use tower::{service_fn, Layer, ServiceExt};

use durations::secs;
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::classify::Decision;
use tower_http_retry::history::StopReason;
use tower_http_retry::{CallSettings, RetryLayer, RetryPolicy};

/// A layer policy with exact waits: 1 s between attempts, 4 attempts.
fn layer_policy() -> RetryPolicy {
    RetryPolicy::default()
        .backoff(Backoff::constant(secs(1)).jitter(Jitter::None))
        .max_attempts(4)
}

fn request(settings: Option<CallSettings>) -> Request<Full<Bytes>> {
    let mut request = Request::get("http://api.test/v1/items")
        .body(Full::default())
        .unwrap();
    if let Some(settings) = settings {
        request.extensions_mut().insert(settings);
    }
    request
}

/// The call times of one call through `policy` with `settings`, against `steps`.
async fn times(
    policy: RetryPolicy,
    settings: Option<CallSettings>,
    steps: Vec<Step>,
) -> Vec<Duration> {
    let script = Script::new(steps);
    let _ = RetryLayer::new(policy)
        .layer(script.clone())
        .oneshot(request(settings))
        .await;
    script.call_times()
}

#[tokio::test(start_paused = true)]
async fn no_retries_makes_one_attempt_and_leaves_other_calls_alone() {
    let layer = RetryLayer::new(layer_policy());
    let script = Script::new([status(503)]);
    let service = layer.layer(script.clone());

    let one = CallSettings::new().no_retries();
    let response = service.clone().oneshot(request(Some(one))).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(script.call_times(), [secs(0)]);

    let _ = service.oneshot(request(None)).await.unwrap();
    assert_eq!(
        script.call_times(),
        [secs(0), secs(0), secs(1), secs(2), secs(3)]
    );
}

#[tokio::test(start_paused = true)]
async fn max_attempts_replaces_the_layers_up_or_down() {
    let more = CallSettings::new().max_attempts(6);
    let calls = times(layer_policy(), Some(more), vec![status(503)]).await;
    assert_eq!(calls, [0, 1, 2, 3, 4, 5].map(secs));
    let fewer = CallSettings::new().max_attempts(2);
    let calls = times(layer_policy(), Some(fewer), vec![status(503)]).await;
    assert_eq!(calls, [secs(0), secs(1)]);
}

#[tokio::test(start_paused = true)]
async fn backoff_replaces_the_layers() {
    let slow = CallSettings::new().backoff(Backoff::constant(secs(5)).jitter(Jitter::None));
    let calls = times(layer_policy(), Some(slow), vec![status(503)]).await;
    assert_eq!(calls, [0, 5, 10, 15].map(secs));
}

#[tokio::test(start_paused = true)]
async fn a_deadline_can_only_shorten_the_layers() {
    let layer = || {
        layer_policy()
            .max_attempts(100)
            .deadline(Duration::from_millis(3500))
    };
    // Shorter: 2.5 s. Attempts at 0, 1, 2; the next would start after it.
    let script = Script::new([status(503)]);
    let settings = CallSettings::new().deadline(Duration::from_millis(2500));
    let response = RetryLayer::new(layer())
        .layer(script.clone())
        .oneshot(request(Some(settings)))
        .await
        .unwrap();
    assert_eq!(script.call_times(), [0, 1, 2].map(secs));
    let history = response
        .extensions()
        .get::<tower_http_retry::RetryHistory>()
        .unwrap();
    assert_eq!(history.stop_reason(), StopReason::Deadline);

    // Longer than the layer's 3.5 s: the layer's holds.
    let longer = CallSettings::new().deadline(secs(60));
    let calls = times(layer(), Some(longer), vec![status(503)]).await;
    assert_eq!(calls, [0, 1, 2, 3].map(secs));

    // A layer without a deadline takes the call's.
    let settings = CallSettings::new().deadline(Duration::from_millis(1500));
    let calls = times(layer_policy(), Some(settings), vec![status(503)]).await;
    assert_eq!(calls, [secs(0), secs(1)]);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_timeout_can_only_shorten_the_layers() {
    let layer = || layer_policy().attempt_timeout(secs(10));
    let shorter = CallSettings::new().attempt_timeout(secs(2));
    let calls = times(layer(), Some(shorter), vec![Step::Hang, status(200)]).await;
    assert_eq!(calls, [secs(0), secs(3)]);
    let longer = CallSettings::new().attempt_timeout(secs(60));
    let calls = times(layer(), Some(longer), vec![Step::Hang, status(200)]).await;
    assert_eq!(calls, [secs(0), secs(11)]);
}

#[tokio::test(start_paused = true)]
async fn a_call_classifier_goes_first_and_the_layers_decides_the_rest() {
    let layer = || {
        layer_policy().classify_with(|_, outcome| {
            (outcome.status() == Some(StatusCode::BAD_GATEWAY)).then_some(Decision::Done)
        })
    };
    let settings = || {
        CallSettings::new().classify_with(|_, outcome| {
            (outcome.status() == Some(StatusCode::SERVICE_UNAVAILABLE)).then_some(Decision::Done)
        })
    };
    assert_eq!(
        times(layer(), Some(settings()), vec![status(503)])
            .await
            .len(),
        1
    );
    assert_eq!(
        times(layer(), Some(settings()), vec![status(502)])
            .await
            .len(),
        1
    );
    assert_eq!(
        times(layer(), Some(settings()), vec![status(500)])
            .await
            .len(),
        4
    );
    assert_eq!(times(layer(), None, vec![status(503)]).await.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn the_settings_are_taken_off_the_request() {
    let server = service_fn(|request: Request<Full<Bytes>>| async move {
        let seen = request.extensions().get::<CallSettings>().is_some();
        let status = if seen { 500 } else { 200 };
        Ok::<_, Infallible>(
            Response::builder()
                .status(status)
                .body(Full::<Bytes>::default())
                .unwrap(),
        )
    });
    let settings = CallSettings::new().max_attempts(2);
    let response = RetryLayer::new(layer_policy())
        .layer(server)
        .oneshot(request(Some(settings)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
