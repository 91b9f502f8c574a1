//! Draining a discarded response body: hostile bodies (always ready, endless, empty frames, failing,
//! lying sizes) never keep the call from its retry or its deadline, nor the runtime from other tasks.

use crate::bodies;
use crate::watchdog;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bodies::{Hostile, Kind, CATALOGUE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use tower::{service_fn, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::history::StopReason;
use tower_http_retry::{Retry, RetryHistory, RetryPolicy};

type BoxBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, std::io::Error>;
type Answer = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, Infallible>>>>;

const WATCHDOG: Duration = Duration::from_secs(20);

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .no_retry_budget()
        .backoff(Backoff::constant(Duration::from_secs(1)).jitter(Jitter::None))
}

/// A server whose first answer is a 503 with a `kind` body, and whose later answers are `then`.
fn server(
    kind: Kind,
    polls: Arc<AtomicU64>,
    then: Option<StatusCode>,
) -> impl tower::Service<
    Request<String>,
    Response = Response<BoxBody>,
    Error = Infallible,
    Future = Answer,
> + Clone {
    let calls = Arc::new(AtomicUsize::new(0));
    service_fn(move |_: Request<String>| -> Answer {
        let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
        let polls = polls.clone();
        Box::pin(async move {
            if first {
                let body = Hostile::counted(kind, polls).boxed_unsync();
                let mut response = Response::new(body);
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                return Ok(response);
            }
            match then {
                Some(status) => {
                    let body = Empty::new().map_err(|never| match never {}).boxed_unsync();
                    let mut response = Response::new(body);
                    *response.status_mut() = status;
                    Ok(response)
                }
                None => std::future::pending().await,
            }
        })
    })
}

#[test]
fn the_retry_leaves_when_its_backoff_ends_whatever_the_discarded_body_does() {
    for kind in CATALOGUE {
        let (status, waited, polls) = watchdog::within(WATCHDOG, true, move || async move {
            let polls = Arc::new(AtomicU64::new(0));
            let client = Retry::new(server(kind, polls.clone(), Some(StatusCode::OK)), policy());
            let start = tokio::time::Instant::now();
            let response = client.oneshot(Request::new(String::new())).await.unwrap();
            (
                response.status(),
                start.elapsed(),
                polls.load(Ordering::Relaxed),
            )
        });
        assert_eq!(status, StatusCode::OK, "{kind:?}");
        assert_eq!(
            waited,
            Duration::from_secs(1),
            "{kind:?}: the backoff, to the nanosecond"
        );
        // The default drain limit (64 KiB) bounds the reading; an empty frame is not free.
        assert!(polls <= 64 * 1024 + 1, "{kind:?}: {polls} frames read");
    }
}

#[test]
fn the_call_ends_at_its_deadline_after_draining_endless_empty_frames() {
    let (stop, waited) = watchdog::within(WATCHDOG, true, || async {
        let polls = Arc::new(AtomicU64::new(0));
        let client = Retry::new(
            server(Kind::EmptyFrames, polls, None),
            policy().deadline(Duration::from_secs(3)),
        );
        let start = tokio::time::Instant::now();
        let error = client
            .oneshot(Request::new(String::new()))
            .await
            .unwrap_err();
        (error.history().stop_reason(), start.elapsed())
    });
    assert_eq!(stop, StopReason::Deadline);
    assert_eq!(waited, Duration::from_secs(3));
}

/// Real time: a body that never ends and a drain limit that never stops it. The retry still leaves
/// when its backoff ends, and another task on the same single-threaded runtime runs meanwhile.
#[test]
fn an_endless_drain_shares_the_runtime_thread_and_stops_with_the_wait() {
    for kind in [Kind::EmptyFrames, Kind::Endless] {
        let (status, ticks) = watchdog::within(WATCHDOG, false, move || async move {
            let polls = Arc::new(AtomicU64::new(0));
            let client = Retry::new(
                server(kind, polls, Some(StatusCode::OK)),
                RetryPolicy::default()
                    .no_retry_budget()
                    .drain_limit(u64::MAX)
                    .backoff(Backoff::constant(Duration::from_millis(30)).jitter(Jitter::None)),
            );
            let ticks = Arc::new(AtomicUsize::new(0));
            let ticker = tokio::spawn({
                let ticks = ticks.clone();
                async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        ticks.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
            let response = client.oneshot(Request::new(String::new())).await.unwrap();
            ticker.abort();
            let history = response.extensions().get::<RetryHistory>().unwrap().clone();
            assert_eq!(history.attempts().len(), 2);
            (response.status(), ticks.load(Ordering::SeqCst))
        });
        assert_eq!(status, StatusCode::OK, "{kind:?}");
        assert!(
            ticks > 0,
            "{kind:?}: the other task never ran during the drain"
        );
    }
}
