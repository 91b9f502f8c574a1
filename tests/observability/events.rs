//! Every decision is a `tracing` event, and no event ever carries a header value, a path or a query.

use crate::captured::capture;
use crate::script;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use script::{status, with_header, Script};
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::Backoff;
use tower_http_retry::{RetryLayer, RetryPolicy};

const SECRETS: [&str; 6] = [
    "s3cr3t-token",
    "session=abc",
    "key-7f3a",
    "q-secret",
    "private-path",
    "user:pw",
];

#[tokio::test(start_paused = true)]
async fn decisions_are_logged_without_header_values() {
    let (captured, _guard) = capture(tracing::Level::TRACE);

    let script = Script::new([
        with_header(503, "retry-after", "1"),
        status(503),
        status(503),
        status(503),
    ]);
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(
            RetryPolicy::default().backoff(Backoff::none()),
        ))
        .service(script);
    let request = Request::post("http://user:pw@api.test/private-path?token=q-secret")
        .header("authorization", "Bearer s3cr3t-token")
        .header("cookie", "session=abc")
        .header("idempotency-key", "key-7f3a")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 503);

    let log = captured.text();
    assert_eq!(
        log.matches("retrying").count() - log.matches("not retrying").count(),
        3,
        "{log}"
    );
    assert_eq!(log.matches("not retrying").count(), 1, "{log}");
    assert!(log.contains("WARN"), "giving up is a warning: {log}");
    assert!(log.contains("api.test"), "the host is logged: {log}");
    for secret in SECRETS {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_injected_key_never_reaches_the_log() {
    let (captured, _guard) = capture(tracing::Level::TRACE);

    let script = Script::new([status(503), status(503), status(503), status(503)]);
    let policy = RetryPolicy::default()
        .backoff(Backoff::none())
        .inject_idempotency_keys()
        .before_retry(|head, _| {
            head.headers.insert(
                "idempotency-key",
                http::HeaderValue::from_static("hook-minted-key"),
            );
        });
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(script.clone());
    let request = Request::post("http://api.test/charges")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();

    let history = response
        .extensions()
        .get::<tower_http_retry::RetryHistory>()
        .unwrap();
    let key = history.idempotency_key().expect("an injected key");
    let key = key.to_str().unwrap().to_owned();
    assert_eq!(script.calls().len(), 4, "the keyed POST was retried");
    assert!(script
        .calls()
        .iter()
        .all(|c| c.headers["idempotency-key"] == key.as_str()));

    let log = captured.text();
    assert_eq!(
        log.matches("restored").count(),
        3,
        "each retry warns about the hook: {log}"
    );
    assert_eq!(
        log.matches("retrying").count() - log.matches("not retrying").count(),
        3
    );
    for secret in [key.as_str(), "hook-minted-key"] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn retries_are_logged_with_opentelemetry_http_field_names() {
    let (captured, _guard) = capture(tracing::Level::TRACE);
    let script = Script::new([status(503), status(502), status(200)]);
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(
            RetryPolicy::default().backoff(Backoff::none()),
        ))
        .service(script);
    let request = Request::get("http://api.test/items")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(service.oneshot(request).await.unwrap().status(), 200);
    let log = captured.text();
    let retries: Vec<&str> = log.lines().filter(|l| l.contains("retrying")).collect();
    assert_eq!(retries.len(), 2, "{log}");
    for (line, (resend, error)) in retries.iter().zip([(1, "503"), (2, "502")]) {
        for field in [
            "http.request.method=GET".to_owned(),
            "server.address=\"api.test\"".to_owned(),
            format!("http.request.resend_count={resend}"),
            format!("error.type=\"{error}\""),
        ] {
            assert!(line.contains(&field), "{field} in {line}");
        }
    }
}
