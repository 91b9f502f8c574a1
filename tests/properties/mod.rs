//! Properties every input must satisfy, whatever a server sends. Shared by the proptest suite
//! (`tests/hostile_headers.rs`, run by `cargo test`) and the fuzz targets under `fuzz/` (its library).
//! Each check panics on a violation.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use tower::{Layer, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::classify::{default_decision, Decision, Outcome, RequestInfo};
use tower_http_retry::history::{StopReason, WaitReason};
use tower_http_retry::rate_limit::{exhausted_for, rate_limit};
use tower_http_retry::retry_after::retry_after;
use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};

/// Headers from raw name/value bytes, keeping only what `http` accepts.
pub fn headers_from(raw: &[(Vec<u8>, Vec<u8>)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in raw {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    headers
}

/// `Retry-After` and `Date` from arbitrary bytes: never a panic, and delay-seconds read exactly.
pub fn check_retry_after(value: &[u8], date: &[u8], now_secs: u32) {
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::RETRY_AFTER, value.clone());
    if let Ok(date) = HeaderValue::from_bytes(date) {
        headers.insert(http::header::DATE, date);
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(now_secs));
    let parsed = retry_after(&headers, now);
    let text = value.to_str().map(str::trim).unwrap_or("");
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        assert_eq!(
            parsed,
            text.parse::<u64>().ok().map(Duration::from_secs),
            "delay-seconds {text:?}"
        );
    }
    if text.starts_with('-') {
        assert_eq!(parsed, None, "a negative delay is ignored: {text:?}");
    }
}

/// The default classification of any status and headers: never a panic, and never a retry of
/// another 4xx, a success or a redirect, nor of a 5xx to a POST without a key.
pub fn check_classify(status: u16, raw_headers: &[(Vec<u8>, Vec<u8>)], method: u8, keyed: bool) {
    let Ok(status) = StatusCode::from_u16(status) else {
        return;
    };
    let methods = [
        Method::GET,
        Method::PUT,
        Method::DELETE,
        Method::POST,
        Method::PATCH,
    ];
    let method = &methods[usize::from(method) % methods.len()];
    let mut request_headers = HeaderMap::new();
    if keyed {
        request_headers.insert("idempotency-key", HeaderValue::from_static("k"));
    }
    let key = HeaderName::from_static("idempotency-key");
    let uri = Uri::from_static("http://api.test/");
    let request = RequestInfo::new(method, &uri, &request_headers, 1, &key);
    let headers = headers_from(raw_headers);
    let decision = default_decision(
        &request,
        &Outcome::Response {
            status,
            headers: &headers,
            extensions: &http::Extensions::new(),
        },
    );
    let code = status.as_u16();
    let retried = matches!(decision, Decision::Retry(_));
    if code < 400 || (code < 500 && ![408, 429, 409].contains(&code)) || (code == 409 && !keyed) {
        assert_eq!(decision, Decision::Done, "{method} {code} keyed={keyed}");
    }
    if (code == 429 || (code == 408 && request.is_idempotent())) && !retried {
        panic!("{method} {code} keyed={keyed} must be retried");
    }
    // A 408 may have been made by a layer after the server got the request.
    if ((500..600).contains(&code) || code == 408) && !request.is_idempotent() {
        assert!(
            !retried,
            "{method} {code} without a key must not be retried"
        );
    }
}

/// Rate-limit headers of every generation, from arbitrary bytes: never a panic, and a wait for a reset
/// only when the quota is reported spent.
pub fn check_rate_limit(raw_headers: &[(Vec<u8>, Vec<u8>)], now_secs: u32) {
    let headers = headers_from(raw_headers);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(now_secs));
    let status = rate_limit(&headers, now);
    match exhausted_for(&headers, now) {
        Some(reset) => {
            let status = status.expect("a spent quota is a parsed quota");
            assert_eq!(status.remaining, 0, "waited for a reset with quota left");
            assert_eq!(status.reset, Some(reset));
        }
        None => assert!(status.is_none_or(|s| s.remaining > 0 || s.reset.is_none())),
    }
}

/// What a hostile failure response does to the wait before the retry.
pub struct WaitCase {
    pub retry_after: Vec<u8>,
    pub date: Vec<u8>,
    pub base_ms: u32,
    pub cap_ms: u32,
    pub jitter: u8,
    pub max_retry_after_s: u16,
    pub status: u16,
    /// More headers on the failure: rate-limit fields, say.
    pub extra: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One failure with hostile headers, then a success, through the real layer under a paused clock:
/// the wait honours `Retry-After` as a floor, stays under its caps, and the call always ends.
pub fn check_wait(case: &WaitCase) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(check_wait_async(case));
}

async fn check_wait_async(case: &WaitCase) {
    let status = if [429, 503].contains(&case.status) {
        case.status
    } else {
        503
    };
    let mut failure = Response::new(Full::<Bytes>::default());
    *failure.status_mut() = StatusCode::from_u16(status).unwrap();
    if let Ok(value) = HeaderValue::from_bytes(&case.retry_after) {
        failure
            .headers_mut()
            .insert(http::header::RETRY_AFTER, value);
    }
    if let Ok(value) = HeaderValue::from_bytes(&case.date) {
        failure.headers_mut().insert(http::header::DATE, value);
    }
    for (name, value) in headers_from(&case.extra) {
        if let Some(name) = name
            && name != http::header::RETRY_AFTER
            && name != http::header::DATE
        {
            failure.headers_mut().append(name, value);
        }
    }
    // Retry-After first; a spent rate limit's reset only without one.
    let now = SystemTime::now();
    let headers_of_failure = failure.headers().clone();
    let asked =
        retry_after(&headers_of_failure, now).or_else(|| exhausted_for(&headers_of_failure, now));
    let failure = std::sync::Arc::new(std::sync::Mutex::new(Some(failure)));
    let server = tower::service_fn(move |_: Request<Full<Bytes>>| {
        let next = failure
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| Response::new(Full::default()));
        async move { Ok::<_, std::convert::Infallible>(next) }
    });
    let jitter = [
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
        Jitter::None,
    ][usize::from(case.jitter) % 4];
    let cap = Duration::from_millis(u64::from(case.cap_ms));
    let max_retry_after = Duration::from_secs(u64::from(case.max_retry_after_s));
    let policy = RetryPolicy::default()
        .backoff(
            Backoff::exponential(Duration::from_millis(u64::from(case.base_ms)))
                .max_delay(cap)
                .jitter(jitter),
        )
        .max_retry_after(max_retry_after)
        // The property is the wait the headers ask for; the throttle would add its pacing after a 429.
        .no_throttle()
        .seed(7);
    let started = tokio::time::Instant::now();
    let response = RetryLayer::new(policy)
        .layer(server)
        .oneshot(
            Request::get("http://api.test/")
                .body(Full::default())
                .unwrap(),
        )
        .await
        .expect("an infallible service");
    let history = response
        .extensions()
        .get::<RetryHistory>()
        .expect("a history")
        .clone();
    let first = &history.attempts()[0];
    // The layer read the headers a moment after this check did: a date may give a few microseconds less.
    let close = |a: Duration, b: Duration| a.abs_diff(b) < Duration::from_secs(1);
    match (first.retry_after, asked) {
        (Some(seen), Some(asked)) => assert!(close(seen, asked), "{seen:?} against {asked:?}"),
        (seen, asked) => assert_eq!(seen, asked, "the history reports what the server asked for"),
    }
    let asked = first.retry_after;
    if retry_after(&headers_of_failure, now).is_some() {
        assert_ne!(
            first.wait.map(|w| w.reason),
            Some(WaitReason::RateLimitReset),
            "Retry-After takes precedence over a rate limit"
        );
    }
    match first.wait {
        Some(wait) => {
            let floor = asked.unwrap_or(Duration::ZERO);
            assert!(
                wait.duration >= floor,
                "Retry-After shortened the wait: {wait:?} < {floor:?}"
            );
            assert!(
                wait.duration <= cap.max(floor),
                "a wait over every cap: {wait:?}"
            );
            assert!(
                floor <= max_retry_after,
                "waited for a Retry-After over the cap"
            );
            let elapsed = started.elapsed();
            assert!(
                elapsed >= wait.duration && elapsed <= wait.duration + Duration::from_millis(1)
            );
            assert_eq!(history.attempt_count(), 2);
        }
        None => {
            assert_eq!(history.stop_reason(), StopReason::RetryAfterTooLong);
            assert!(asked.is_some_and(|asked| asked > max_retry_after));
            assert_eq!(started.elapsed(), Duration::ZERO, "returned at once");
        }
    }
}
