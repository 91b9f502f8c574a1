//! The check before re-sending a request that may have taken effect, through the layer, on tokio's
//! paused clock: when it runs, what each answer does, and the deadline over it.

#[path = "support/script.rs"]
mod script;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use script::{status, Script, Step};
use tokio::time::Instant;
use tower::{Service, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::check::{CheckBeforeRetry, CheckRequest, CheckVerdict};
use tower_http_retry::history::{CheckAnswer, StopReason};
use tower_http_retry::{BoxError, RetryHistory, RetryLayer, RetryPolicy};

/// What the test check answers.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Retry,
    Stop,
    Respond,
    Never,
}

/// A check that counts its runs, sends one GET through the service, then answers as told.
#[derive(Clone)]
struct TestCheck {
    answer: Answer,
    runs: Arc<AtomicUsize>,
}

impl<S> CheckBeforeRetry<S, Full<Bytes>, Full<Bytes>> for TestCheck
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
{
    type Future = Pin<Box<dyn Future<Output = CheckVerdict<Full<Bytes>>> + Send>>;

    fn check(&self, service: S, request: CheckRequest<'_, Full<Bytes>>) -> Self::Future {
        self.runs.fetch_add(1, Ordering::SeqCst);
        assert_eq!(request.head.method, Method::POST);
        let answer = self.answer;
        Box::pin(async move {
            let lookup = Request::get("http://api.test/v1/jobs").body(Full::default());
            let found = service.oneshot(lookup.unwrap()).await.ok();
            match answer {
                Answer::Retry => CheckVerdict::Retry,
                Answer::Stop => CheckVerdict::Stop,
                Answer::Respond => CheckVerdict::Respond(found.expect("the lookup answers")),
                Answer::Never => std::future::pending().await,
            }
        })
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .backoff(Backoff::constant(Duration::from_secs(1)).jitter(Jitter::None))
        .max_attempts(3)
}

async fn call(
    answer: Answer,
    policy: RetryPolicy,
    method: Method,
    steps: Vec<Step>,
) -> (
    Result<Response<Full<Bytes>>, tower_http_retry::Error>,
    Script,
    usize,
) {
    let runs = Arc::new(AtomicUsize::new(0));
    let check = TestCheck {
        answer,
        runs: runs.clone(),
    };
    let script = Script::new(steps);
    let service = tower::ServiceBuilder::new()
        .layer(RetryLayer::new(policy).check_before_retry(check))
        .service(script.clone());
    let request = Request::builder()
        .method(method)
        .uri("http://api.test/v1/jobs")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let result = service.oneshot(request).await;
    (result, script, runs.load(Ordering::SeqCst))
}

fn history(result: &Result<Response<Full<Bytes>>, tower_http_retry::Error>) -> RetryHistory {
    match result {
        Ok(response) => response.extensions().get::<RetryHistory>().unwrap().clone(),
        Err(error) => error.history().clone(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_safe_retry_runs_no_check() {
    let (result, script, runs) = call(
        Answer::Stop,
        policy(),
        Method::GET,
        vec![status(503), status(200)],
    )
    .await;
    assert_eq!(result.unwrap().status(), StatusCode::OK);
    assert_eq!((script.calls().len(), runs), (2, 0));
    // Nor a 429 on a POST: the server did not act on it.
    let (_, script, runs) = call(
        Answer::Stop,
        policy(),
        Method::POST,
        vec![status(429), status(200)],
    )
    .await;
    assert_eq!((script.calls().len(), runs), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn retry_re_sends_after_the_wait_within_the_attempt_limit() {
    let (result, script, runs) =
        call(Answer::Retry, policy(), Method::POST, vec![status(503)]).await;
    let history = history(&result);
    assert_eq!(result.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    // Attempts at 0 s and 1 s and 2 s (the lookups at 1 s and 2 s, just before them), then the limit.
    let posts: Vec<_> = script.call_times().into_iter().step_by(2).collect();
    assert_eq!(posts, [0, 1, 2].map(Duration::from_secs));
    assert_eq!((script.calls().len(), runs), (5, 2));
    assert_eq!(history.attempt_count(), 3, "lookups are not attempts");
    assert_eq!(history.stop_reason(), StopReason::AttemptsExhausted);
    let after: Vec<_> = history.checks().iter().map(|c| c.after_attempt).collect();
    assert_eq!(after, [1, 2]);
}

#[tokio::test(start_paused = true)]
async fn stop_returns_the_last_outcome_error_included() {
    let reset = Step::Fail(io::ErrorKind::ConnectionReset);
    let (result, script, runs) = call(Answer::Stop, policy(), Method::POST, vec![reset]).await;
    let history = history(&result);
    let error = result.unwrap_err();
    assert!(
        std::error::Error::source(&error).is_some(),
        "the reset is the source"
    );
    assert_eq!(history.stop_reason(), StopReason::CheckStopped);
    assert_eq!(
        (script.calls().len(), runs),
        (2, 1),
        "the attempt and the lookup"
    );
    assert_eq!(history.attempt_count(), 1);
    assert_eq!(history.checks()[0].answer, CheckAnswer::Stop);
}

#[tokio::test(start_paused = true)]
async fn respond_returns_the_checks_response() {
    let (result, _, runs) = call(
        Answer::Respond,
        policy(),
        Method::POST,
        vec![status(502), status(200)],
    )
    .await;
    let history = history(&result);
    assert_eq!(result.unwrap().status(), StatusCode::OK);
    assert_eq!(runs, 1);
    assert_eq!(history.stop_reason(), StopReason::CheckAnswered);
    assert_eq!(
        history.checks()[0].answer,
        CheckAnswer::Respond(StatusCode::OK)
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_ends_a_check_that_does_not() {
    let started = Instant::now();
    let policy = policy().deadline(Duration::from_secs(5));
    let (result, script, runs) = call(Answer::Never, policy, Method::POST, vec![status(503)]).await;
    let history = history(&result);
    let error = result.unwrap_err();
    assert!(error.is_deadline());
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!((script.calls().len(), runs), (2, 1));
    assert_eq!(history.checks()[0].answer, CheckAnswer::Interrupted);
    assert_eq!(
        history.checks()[0].requests.len(),
        1,
        "its lookup is recorded"
    );
}
