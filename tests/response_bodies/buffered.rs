//! Reading the response body within the attempt (`RetryPolicy::buffer_responses`), in memory on a
//! paused clock: a body that fails while read is an attempt failure, the attempt timeout and the
//! deadline bound the read, a body over the limit is passed on as it streams, and the classifier
//! reads a body read whole.

use crate::{bodies, watchdog};

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bodies::{Hostile, Kind};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::time::Instant;
use tower::{service_fn, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::classify::{Decision, ErrorKind, RetryClass};
use tower_http_retry::history::{AttemptOutcome, StopReason};
use tower_http_retry::{CallSettings, Retry, RetryHistory, RetryPolicy};

/// What one response body does.
#[derive(Clone, Debug)]
enum Script {
    /// These chunks, then the end.
    Whole(Vec<&'static str>),
    /// These chunks, then a connection reset.
    Resets(Vec<&'static str>),
    /// These chunks, then nothing more, ever.
    Stalls(Vec<&'static str>),
}

/// A response body that plays a [`Script`].
#[derive(Debug)]
struct Scripted {
    chunks: VecDeque<&'static str>,
    end: End,
}

#[derive(Debug)]
enum End {
    Ends,
    Resets,
    Stalls,
}

impl Scripted {
    fn new(script: Script) -> Self {
        let (chunks, end) = match script {
            Script::Whole(chunks) => (chunks, End::Ends),
            Script::Resets(chunks) => (chunks, End::Resets),
            Script::Stalls(chunks) => (chunks, End::Stalls),
        };
        Self {
            chunks: chunks.into(),
            end,
        }
    }
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(chunk.as_bytes())))));
        }
        match self.end {
            End::Ends => Poll::Ready(None),
            End::Resets => Poll::Ready(Some(Err(io::ErrorKind::ConnectionReset.into()))),
            End::Stalls => Poll::Pending,
        }
    }
}

/// A server answering the n-th call with the n-th `(status, body)` (the last one repeats), and
/// the count of calls.
fn server(
    script: Vec<(u16, Script)>,
) -> (
    impl tower::Service<
            Request<String>,
            Response = Response<Scripted>,
            Error = Infallible,
            Future = impl Send,
        > + Clone,
    Arc<AtomicUsize>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let script = Arc::new(script);
    let service = service_fn(move |_: Request<String>| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        let (status, body) = script[n.min(script.len() - 1)].clone();
        async move {
            let mut response = Response::new(Scripted::new(body));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            Ok(response)
        }
    });
    (service, calls)
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .backoff(Backoff::constant(Duration::from_millis(100)).jitter(Jitter::None))
        .buffer_responses(1000)
}

fn request(method: Method) -> Request<String> {
    Request::builder()
        .method(method)
        .uri("http://api.test/v1/report")
        .body(String::new())
        .unwrap()
}

fn history_of<B>(response: &Response<B>) -> RetryHistory {
    response
        .extensions()
        .get::<RetryHistory>()
        .expect("a history")
        .clone()
}

#[tokio::test(start_paused = true)]
async fn a_get_whose_body_resets_while_read_is_sent_again() {
    let (server, calls) = server(vec![
        (200, Script::Resets(vec!["0123456789"])),
        (200, Script::Whole(vec!["0123456789", "abcdefghij"])),
    ]);
    let client = Retry::new(server, policy());
    let response = client.oneshot(request(Method::GET)).await.unwrap();

    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let history = history_of(&response);
    assert_eq!(history.attempt_count(), 2);
    assert_eq!(
        history.attempts()[0].outcome,
        AttemptOutcome::Error(ErrorKind::Reset)
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "0123456789abcdefghij");
}

#[tokio::test(start_paused = true)]
async fn a_post_whose_body_resets_while_read_fails_with_the_error_sent_once() {
    let (server, calls) = server(vec![
        (200, Script::Resets(vec!["0123456789"])),
        (200, Script::Whole(vec!["never sent"])),
    ]);
    let client = Retry::new(server, policy());
    let error = client.oneshot(request(Method::POST)).await.unwrap_err();

    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(error.kind(), Some(ErrorKind::Reset));
    let cause = error
        .inner()
        .and_then(|e| e.downcast_ref::<tower_http_retry::body::BodyReadFailed>())
        .expect("the body's failure");
    let io = std::error::Error::source(cause)
        .and_then(|e| e.downcast_ref::<io::Error>())
        .unwrap();
    assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
    let history = error.history();
    assert_eq!(history.stop_reason(), StopReason::NotIdempotent);
    assert_eq!(
        history.attempts()[0].outcome,
        AttemptOutcome::Error(ErrorKind::Reset)
    );
}

#[tokio::test(start_paused = true)]
async fn a_keyed_post_whose_body_resets_while_read_is_sent_again() {
    let (server, calls) = server(vec![
        (200, Script::Resets(vec!["0123456789"])),
        (200, Script::Whole(vec!["created"])),
    ]);
    let client = Retry::new(server, policy());
    let mut post = request(Method::POST);
    post.headers_mut()
        .insert("idempotency-key", "7f3c".parse().unwrap());
    let response = client.oneshot(post).await.unwrap();

    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let history = history_of(&response);
    assert_eq!(
        history.attempts()[0].outcome,
        AttemptOutcome::Error(ErrorKind::Reset)
    );
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "created"
    );
}

#[tokio::test(start_paused = true)]
async fn without_the_option_a_body_that_resets_is_the_callers_error() {
    let (server, calls) = server(vec![
        (200, Script::Resets(vec!["0123456789"])),
        (200, Script::Whole(vec!["whole"])),
    ]);
    let client = Retry::new(server, RetryPolicy::default());
    let response = client.oneshot(request(Method::GET)).await.unwrap();
    assert!(
        response.body().get_ref().is_some(),
        "passed through as it is"
    );
    assert!(response.into_body().collect().await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_bounds_the_read_of_the_body() {
    let (server, calls) = server(vec![
        (200, Script::Stalls(vec!["0123456789"])),
        (200, Script::Whole(vec!["whole"])),
    ]);
    let policy = policy().attempt_timeout(Duration::from_secs(2));
    let client = Retry::new(server, policy);
    let start = Instant::now();
    let response = client.oneshot(request(Method::GET)).await.unwrap();

    // The stalled body ends its attempt at the timeout; the retry waits 100 ms.
    assert_eq!(start.elapsed(), Duration::from_millis(2100));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let history = history_of(&response);
    assert_eq!(
        history.attempts()[0].outcome,
        AttemptOutcome::Error(ErrorKind::AttemptTimeout)
    );
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "whole"
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_the_read_of_the_body() {
    let (server, calls) = server(vec![(200, Script::Stalls(vec!["0123456789"]))]);
    let policy = policy().deadline(Duration::from_secs(3));
    let client = Retry::new(server, policy);
    let start = Instant::now();
    let error = client.oneshot(request(Method::GET)).await.unwrap_err();

    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert!(error.is_deadline());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let history = error.history();
    assert_eq!(history.stop_reason(), StopReason::Deadline);
    assert_eq!(history.attempts()[0].outcome, AttemptOutcome::Interrupted);
}

#[tokio::test(start_paused = true)]
async fn a_body_over_the_limit_is_passed_on_whole_and_not_retried() {
    let chunks = vec!["0123456789"; 15];
    let (server, calls) = server(vec![(200, Script::Whole(chunks))]);
    let client = Retry::new(server, RetryPolicy::default().buffer_responses(64));
    let response = client.oneshot(request(Method::GET)).await.unwrap();

    let history = history_of(&response);
    assert_eq!(history.stop_reason(), StopReason::Streamed);
    assert!(!history.stop_reason().gave_up());
    assert_eq!(history.attempt_count(), 1);
    assert_eq!(
        history.attempts()[0].outcome,
        AttemptOutcome::Status(StatusCode::OK)
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "0123456789".repeat(15));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_body_over_the_limit_that_then_fails_is_the_callers_error() {
    let chunks = vec!["0123456789"; 10];
    let (server, calls) = server(vec![
        (200, Script::Resets(chunks)),
        (200, Script::Whole(vec!["never sent"])),
    ]);
    let client = Retry::new(server, RetryPolicy::default().buffer_responses(64));
    let response = client.oneshot(request(Method::GET)).await.unwrap();
    assert_eq!(history_of(&response).stop_reason(), StopReason::Streamed);

    let mut body = response.into_body();
    let mut read = Vec::new();
    let error = loop {
        match body.frame().await.expect("the body breaks before its end") {
            Ok(frame) => read.extend_from_slice(&frame.into_data().unwrap()),
            Err(error) => break error,
        }
    };
    assert_eq!(read, "0123456789".repeat(10).as_bytes(), "nothing lost");
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "passed on: not retried");
}

#[tokio::test(start_paused = true)]
async fn a_503_over_the_limit_is_still_retried_by_its_head() {
    let (server, calls) = server(vec![
        (503, Script::Whole(vec!["0123456789"; 10])),
        (200, Script::Whole(vec!["whole"])),
    ]);
    let client = Retry::new(server, policy().buffer_responses(64));
    let response = client.oneshot(request(Method::GET)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(history_of(&response).stop_reason(), StopReason::Finished);
}

#[tokio::test(start_paused = true)]
async fn the_read_stops_at_the_limit_so_memory_is_bounded() {
    // An endless body of 1 KiB frames: the read takes five (past 4 KiB) and passes it on.
    let polls = Arc::new(AtomicU64::new(0));
    let counted = polls.clone();
    let server = service_fn(move |_: Request<String>| {
        let body = Hostile::counted(Kind::Endless, counted.clone());
        async move { Ok::<_, Infallible>(Response::new(body)) }
    });
    let client = Retry::new(server, RetryPolicy::default().buffer_responses(4 * 1024));
    let response = client.oneshot(request(Method::GET)).await.unwrap();
    assert_eq!(polls.load(Ordering::SeqCst), 5);
    assert_eq!(history_of(&response).stop_reason(), StopReason::Streamed);
    let mut body = response.into_body();
    for _ in 0..8 {
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap().len(), 1024);
    }
    assert_eq!(polls.load(Ordering::SeqCst), 8, "the rest streams");
}

#[tokio::test(start_paused = true)]
async fn a_body_read_whole_is_ready_at_once_and_exact() {
    let (server, _) = server(vec![(200, Script::Whole(vec!["{\"id\":", " 7}"]))]);
    let client = Retry::new(server, policy());
    let response = client.oneshot(request(Method::GET)).await.unwrap();
    // A first attempt that needed nothing carries no history.
    assert!(response.extensions().get::<RetryHistory>().is_none());
    let mut body = response.into_body();
    assert!(body.get_ref().is_none(), "read by the layer");
    assert_eq!(body.size_hint().exact(), Some(9));
    assert!(!body.is_end_stream());
    let waker = futures_task_noop();
    let mut cx = Context::from_waker(&waker);
    let mut read = Vec::new();
    // Every frame is ready without waiting.
    while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
        read.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    assert_eq!(read, b"{\"id\": 7}");
    assert!(body.is_end_stream());
    assert_eq!(body.size_hint().exact(), Some(0));
}

fn futures_task_noop() -> std::task::Waker {
    std::task::Waker::noop().clone()
}

/// The recipe's classifier in short: a JSON `overloaded` error is retried.
fn overloaded(outcome: &tower_http_retry::classify::Outcome<'_>) -> Option<Decision> {
    let body = outcome.body()?;
    let text = std::str::from_utf8(body).ok()?;
    text.contains("\"overloaded\"")
        .then_some(Decision::Retry(RetryClass::Throttling))
}

#[tokio::test(start_paused = true)]
async fn the_classifier_reads_a_body_read_whole() {
    let (server, calls) = server(vec![
        (200, Script::Whole(vec!["{\"error\": ", "\"overloaded\"}"])),
        (200, Script::Whole(vec!["{\"id\": 7}"])),
    ]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let policy = policy().classify_with(move |_, outcome| {
        record.lock().unwrap().push(outcome.body().cloned());
        overloaded(outcome)
    });
    let client = Retry::new(server, policy);
    let response = client.oneshot(request(Method::GET)).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            Some(Bytes::from_static(b"{\"error\": \"overloaded\"}")),
            Some(Bytes::from_static(b"{\"id\": 7}")),
        ]
    );
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "{\"id\": 7}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_the_option_the_classifier_sees_no_body() {
    let (server, calls) = server(vec![(
        200,
        Script::Whole(vec!["{\"error\": \"overloaded\"}"]),
    )]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let policy = RetryPolicy::default().classify_with(move |_, outcome| {
        record.lock().unwrap().push(outcome.body().is_some());
        overloaded(outcome)
    });
    let response = Retry::new(server, policy)
        .oneshot(request(Method::GET))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(*seen.lock().unwrap(), vec![false]);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "{\"error\": \"overloaded\"}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_bytes_are_not_left_in_the_responses_extensions() {
    let (server, _) = server(vec![(200, Script::Whole(vec!["{\"id\": 7}"]))]);
    let policy = policy().classify_with(|_, outcome| {
        assert!(outcome.body().is_some());
        None
    });
    let response = Retry::new(server, policy)
        .oneshot(request(Method::GET))
        .await
        .unwrap();
    assert!(response.extensions().is_empty());
}

#[tokio::test(start_paused = true)]
async fn call_settings_turn_the_read_on_and_off() {
    let script = || {
        vec![
            (200, Script::Resets(vec!["0123456789"])),
            (200, Script::Whole(vec!["whole"])),
        ]
    };
    // Off in the layer, on for the call.
    let (service, calls) = server(script());
    let mut on = request(Method::GET);
    on.extensions_mut()
        .insert(CallSettings::new().buffer_responses(1000));
    let response = Retry::new(service, RetryPolicy::default())
        .oneshot(on)
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "whole"
    );

    // On in the layer, off for the call.
    let (service, calls) = server(script());
    let mut off = request(Method::GET);
    off.extensions_mut()
        .insert(CallSettings::new().stream_responses());
    let response = Retry::new(service, policy()).oneshot(off).await.unwrap();
    assert!(response.body().get_ref().is_some());
    assert!(response.into_body().collect().await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A body that answers trailers frames for ever (no HTTP peer sends one, but a `Body` may).
struct EndlessTrailers;

impl Body for EndlessTrailers {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let mut trailers = http::HeaderMap::new();
        trailers.insert(
            "x-checksum",
            http::HeaderValue::from_static("0123456789abcdef"),
        );
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }
}

/// The call runs on a thread of its own, so that the test fails rather than hangs if the read grows
/// for ever again.
#[test]
fn trailers_count_against_the_limit_so_endless_ones_cannot_grow_the_read() {
    let stop = watchdog::within(Duration::from_secs(5), true, || async {
        let server = service_fn(|_: Request<String>| async {
            Ok::<_, Infallible>(Response::new(EndlessTrailers))
        });
        let client = Retry::new(server, RetryPolicy::default().buffer_responses(1024));
        let request = Request::get("http://api.test/items")
            .body(String::new())
            .unwrap();
        let response = client.oneshot(request).await.unwrap();
        history_of(&response).stop_reason()
    });
    assert_eq!(stop, StopReason::Streamed, "the read ends at the limit");
}
