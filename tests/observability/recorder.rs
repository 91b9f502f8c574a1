//! The `metrics` feature: what a recorder sees of retries, waits, calls, budget refusals and holds.
#![cfg(feature = "metrics")]

use crate::script;

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use script::{status, with_header, Script, Step};
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::budget::RetryBudget;
use tower_http_retry::metrics::*;
use tower_http_retry::throttle::Throttle;
use tower_http_retry::{RetryLayer, RetryPolicy};

/// Runs `calls` on a paused current-thread runtime with a recorder of its own, and returns every
/// metric as `name{label=value,...}` -> counter value or histogram samples.
fn measure(calls: impl Future<Output = ()>) -> BTreeMap<String, Vec<f64>> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || runtime.block_on(calls));
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let name = match labels.is_empty() {
                true => key.name().to_owned(),
                false => format!("{}{{{}}}", key.name(), labels.join(",")),
            };
            let values = match value {
                DebugValue::Counter(n) => vec![n as f64],
                DebugValue::Gauge(g) => vec![g.0],
                DebugValue::Histogram(samples) => samples.into_iter().map(|s| s.0).collect(),
            };
            (name, values)
        })
        .collect()
}

fn get() -> Request<Full<Bytes>> {
    Request::get("http://api.test/items")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn call(policy: RetryPolicy, script: Script, request: Request<Full<Bytes>>) {
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(script);
    let _ = service.oneshot(request).await;
}

#[test]
fn retries_waits_and_calls_are_counted() {
    let metrics = measure(async {
        // The throttle would make the second call wait in line after a 429: counted apart.
        let policy = RetryPolicy::default()
            .no_retry_budget()
            .no_throttle()
            .backoff(Backoff::constant(Duration::from_millis(100)).jitter(Jitter::None));
        let script = Script::new([
            with_header(503, "retry-after", "2"),
            status(429),
            status(200),
        ]);
        call(policy.clone(), script.clone(), get()).await;
        // Succeeds at once: counted as a call, and nothing else.
        call(policy, script, get()).await;
    });
    let expected: BTreeMap<String, Vec<f64>> = [
        (format!("{RETRIES}{{class=transient}}"), vec![1.0]),
        (format!("{RETRIES}{{class=throttling}}"), vec![1.0]),
        (format!("{WAIT}{{reason=retry_after}}"), vec![2.0]),
        (format!("{WAIT}{{reason=backoff}}"), vec![0.1]),
        (format!("{CALLS}{{stop_reason=finished}}"), vec![2.0]),
        (CALL_RETRIES.to_owned(), vec![2.0]),
        (CALL_RETRY_DELAY.to_owned(), vec![2.1]),
    ]
    .into_iter()
    .collect();
    assert_eq!(metrics, expected);
}

#[test]
fn give_ups_are_counted_by_reason_and_budget_refusals_by_class() {
    let metrics = measure(async {
        let empty = RetryBudget::builder().floor(0).ratio(0.0).build();
        let refused = RetryPolicy::default().retry_budget(empty);
        call(refused, Script::new([status(503)]), get()).await;

        let post = Request::post("http://api.test/charges")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let reset = Script::new([Step::Fail(io::ErrorKind::ConnectionReset)]);
        call(RetryPolicy::default(), reset, post).await;

        let policy = RetryPolicy::default().max_attempts(1);
        call(policy, Script::new([status(502)]), get()).await;
    });
    assert_eq!(
        metrics[&format!("{CALLS}{{stop_reason=budget_exhausted}}")],
        [1.0]
    );
    assert_eq!(
        metrics[&format!("{BUDGET_REFUSALS}{{class=transient}}")],
        [1.0]
    );
    assert_eq!(
        metrics[&format!("{CALLS}{{stop_reason=not_idempotent}}")],
        [1.0]
    );
    assert_eq!(
        metrics[&format!("{CALLS}{{stop_reason=attempts_exhausted}}")],
        [1.0]
    );
    assert!(
        !metrics.contains_key(CALL_RETRIES),
        "no call retried: {metrics:?}"
    );
    assert!(
        !metrics.keys().any(|k| k.starts_with(RETRIES)),
        "{metrics:?}"
    );
}

#[test]
fn throttle_holds_are_counted() {
    let metrics = measure(async {
        let throttle = Throttle::new();
        throttle.hold(
            &"http://api.test/".parse::<http::Uri>().unwrap(),
            Duration::from_secs(1),
        );
        let policy = RetryPolicy::default().throttle(throttle);
        call(policy, Script::new([status(200)]), get()).await;
    });
    assert_eq!(metrics[THROTTLE_HOLDS], [1.0]);
    assert_eq!(metrics[&format!("{CALLS}{{stop_reason=finished}}")], [1.0]);
}

#[test]
fn no_label_carries_a_header_a_path_or_a_host() {
    let metrics = measure(async {
        let policy = RetryPolicy::default().backoff(Backoff::none());
        let request = Request::get("http://secret-host.test/private-path?q=secret-query")
            .header("authorization", "Bearer secret-token")
            .body(Full::new(Bytes::new()))
            .unwrap();
        call(policy, Script::new([status(503)]), request).await;
    });
    let names = format!("{metrics:?}");
    for secret in [
        "secret-host",
        "private-path",
        "secret-query",
        "secret-token",
    ] {
        assert!(!names.contains(secret), "{secret} in {names}");
    }
}

/// A gRPC client's channel, answering each call from `codes` in turn (`grpc-status` in the head; `0` as
/// a plain 200 whose status would come in the trailers), or resetting it with REFUSED_STREAM (`None`).
/// A gRPC client's body, as tonic's is: boxed.
#[cfg(all(feature = "grpc", feature = "http2"))]
type GrpcBody = http_body_util::combinators::UnsyncBoxBody<Bytes, tower_http_retry::BoxError>;

/// The layer over such a client, with its body conversion as a plain function.
#[cfg(all(feature = "grpc", feature = "http2"))]
type GrpcLayer = tower_http_retry::grpc::GrpcRetryLayer<
    fn(tower_http_retry::body::ReplayBody<GrpcBody>) -> GrpcBody,
>;

#[cfg(all(feature = "grpc", feature = "http2"))]
fn grpc_channel(
    answers: &'static [Option<&'static str>],
) -> impl tower::Service<
    Request<GrpcBody>,
    Response = http::Response<Full<Bytes>>,
    Error = tower_http_retry::BoxError,
    Future = impl Send,
> + Clone {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let next = Arc::new(AtomicUsize::new(0));
    tower::service_fn(move |_: Request<_>| {
        let answer = answers[next.fetch_add(1, Ordering::SeqCst).min(answers.len() - 1)];
        async move {
            match answer {
                Some("0") => Ok(http::Response::new(Full::new(Bytes::new()))),
                Some(code) => Ok(http::Response::builder()
                    .header("grpc-status", code)
                    .body(Full::new(Bytes::new()))
                    .unwrap()),
                None => Err(h2::Error::from(h2::Reason::REFUSED_STREAM).into()),
            }
        }
    })
}

#[cfg(all(feature = "grpc", feature = "http2"))]
async fn grpc_call(layer: GrpcLayer, answers: &'static [Option<&'static str>], uri: &str) {
    use http_body_util::BodyExt;
    let client = ServiceBuilder::new()
        .layer(layer)
        .service(grpc_channel(answers));
    let body = Full::new(Bytes::new()).map_err(Into::into).boxed_unsync();
    let request = Request::post(uri).body(body).unwrap();
    let _ = client.oneshot(request).await;
}

#[cfg(all(feature = "grpc", feature = "http2"))]
fn grpc_layer() -> GrpcLayer {
    use http_body_util::BodyExt;
    let into_body: fn(_) -> _ = |body: tower_http_retry::body::ReplayBody<_>| body.boxed_unsync();
    let policy = RetryPolicy::default()
        .no_retry_budget()
        .backoff(Backoff::constant(Duration::from_millis(100)).jitter(Jitter::None));
    tower_http_retry::grpc::GrpcRetryLayer::new(into_body).policy(policy)
}

#[cfg(all(feature = "grpc", feature = "http2"))]
#[test]
fn grpc_calls_record_a96_instruments_labelled_by_method_and_target() {
    let metrics = measure(async {
        // Tonic's path-only URI: the target is what the layer was told.
        let layer = grpc_layer().target("dns:///health.test:50051");
        grpc_call(
            layer,
            &[Some("14"), Some("14"), Some("0")],
            "/grpc.health.v1.Health/Check",
        )
        .await;
        // No target given: the URI's authority. A refused stream is a transparent retry.
        grpc_call(
            grpc_layer(),
            &[None, Some("14"), Some("0")],
            "http://health.test:50051/grpc.health.v1.Health/Watch",
        )
        .await;
        // A call that did not retry records none of the per-call instruments.
        grpc_call(grpc_layer(), &[Some("0")], "/grpc.health.v1.Health/Check").await;
    });
    let check = "grpc.method=grpc.health.v1.Health/Check,grpc.target=dns:///health.test:50051";
    let watch = "grpc.method=grpc.health.v1.Health/Watch,grpc.target=health.test:50051";
    let per_call: BTreeMap<String, Vec<f64>> = metrics
        .iter()
        .filter(|(name, _)| name.starts_with("grpc."))
        .map(|(name, values)| (name.clone(), values.clone()))
        .collect();
    let expected: BTreeMap<String, Vec<f64>> = [
        (format!("grpc.client.call.retries{{{check}}}"), vec![2.0]),
        (
            format!("grpc.client.call.retry_delay{{{check}}}"),
            vec![0.2],
        ),
        (format!("grpc.client.call.retries{{{watch}}}"), vec![1.0]),
        (
            format!("grpc.client.call.transparent_retries{{{watch}}}"),
            vec![1.0],
        ),
        (
            format!("grpc.client.call.retry_delay{{{watch}}}"),
            vec![0.2],
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(per_call, expected);
    // The retries are counted once more, per retry and class, by the layer's own counter: the same
    // retries as the per-call histogram's samples add up to, not other ones.
    assert_eq!(metrics[&format!("{RETRIES}{{class=transient}}")], [4.0]);
    assert!(!metrics.contains_key(CALL_RETRIES), "{metrics:?}");
}
