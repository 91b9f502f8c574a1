//! The check before re-sending a request that may have taken effect, through the layer, on tokio's
//! paused clock: when it runs, what each answer does, and the deadline over it.

use retry_test_support::script;

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
use tower_http_retry::body::ResponseBody;
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
    Result<Response<ResponseBody<Full<Bytes>>>, tower_http_retry::Error>,
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

fn history(
    result: &Result<Response<ResponseBody<Full<Bytes>>>, tower_http_retry::Error>,
) -> RetryHistory {
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

#[tokio::test(start_paused = true)]
async fn without_a_deadline_the_attempt_timeout_bounds_a_check_that_never_answers() {
    let started = Instant::now();
    let policy = policy().attempt_timeout(Duration::from_secs(2));
    let (result, _, runs) = call(Answer::Never, policy, Method::POST, vec![status(503)]).await;
    let history = history(&result);
    // The 1 s backoff, then the check for at most the attempt timeout: the last outcome returned.
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(result.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(runs, 1);
    assert_eq!(
        history.stop_reason(),
        StopReason::CheckTimedOut,
        "{history}"
    );
    assert_eq!(history.checks()[0].answer, CheckAnswer::Interrupted);
}

#[tokio::test(start_paused = true)]
async fn after_a_check_the_retry_runs_to_the_deadline_not_to_the_checks_own_bound() {
    let started = Instant::now();
    // The check starts at 1 s, bounded at 3 s (the attempt timeout); its lookup answers at 2.5 s.
    // The retry then sent would time out at 4.5 s, after the 4 s deadline: the deadline bounds it,
    // and it answers at 3.5 s, within it.
    let policy = policy()
        .attempt_timeout(Duration::from_secs(2))
        .deadline(Duration::from_secs(4));
    let steps = vec![
        status(503),
        Step::Slow(Duration::from_millis(1500), 200),
        Step::Slow(Duration::from_secs(1), 201),
    ];
    let (result, _, runs) = call(Answer::Retry, policy, Method::POST, steps).await;
    assert_eq!(runs, 1);
    let response = result.expect("the retry answered before the deadline");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(started.elapsed(), Duration::from_millis(3500));
}

/// Over real sockets: a response kept for the check holds its HTTP/2 stream while its body is
/// unread; a server that allows one stream at a time must still see the check's lookup.
mod sockets {
    use std::convert::Infallible;
    use std::time::Duration;

    use bytes::Bytes;
    use http::{Method, Request, Response, StatusCode};
    use std::future::Future;

    use http_body_util::{BodyExt, Full};
    use hyper::body::{Frame, Incoming};
    use hyper::server::conn::http2;
    use hyper::service::service_fn;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio::net::TcpListener;
    use tower::{Service, ServiceExt};
    use tower_http_retry::check::{CheckBeforeRetry, CheckRequest, CheckVerdict};
    use tower_http_retry::history::{CheckAnswer, StopReason};
    use tower_http_retry::{BoxError, RetryLayer, RetryPolicy};

    type Answer = http_body_util::combinators::BoxBody<Bytes, Infallible>;

    /// POST answers 503 with a body that starts and then stalls for seconds; GET answers 200.
    /// One stream at a time per connection.
    async fn one_stream_server() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let service = service_fn(|request: Request<Incoming>| async move {
                    let response = match request.method() == Method::POST {
                        true => {
                            let body = Stalling {
                                started: false,
                                stall: Box::pin(tokio::time::sleep(Duration::from_secs(5))),
                            };
                            Response::builder().status(503).body(body.boxed()).unwrap()
                        }
                        false => Response::new(Full::new(Bytes::from_static(b"found")).boxed()),
                    };
                    Ok::<Response<Answer>, Infallible>(response)
                });
                tokio::spawn(
                    http2::Builder::new(TokioExecutor::new())
                        .max_concurrent_streams(1)
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        format!("http://{addr}/v1/jobs")
    }

    /// A body that sends a few bytes, then nothing for seconds.
    struct Stalling {
        started: bool,
        stall: std::pin::Pin<Box<tokio::time::Sleep>>,
    }

    impl http_body::Body for Stalling {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if !self.started {
                self.started = true;
                return std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"busy")))));
            }
            self.stall.as_mut().poll(cx).map(|()| None)
        }
    }

    /// A check that looks the job up with a GET and answers as told.
    #[derive(Clone)]
    struct LookUp {
        url: String,
        stop: bool,
    }

    impl<S> CheckBeforeRetry<S, Full<Bytes>, Incoming> for LookUp
    where
        S: Service<Request<Full<Bytes>>, Response = Response<Incoming>> + Send + 'static,
        S::Future: Send,
        S::Error: Into<BoxError>,
    {
        type Future =
            std::pin::Pin<Box<dyn std::future::Future<Output = CheckVerdict<Incoming>> + Send>>;

        fn check(&self, service: S, _: CheckRequest<'_, Full<Bytes>>) -> Self::Future {
            let (url, stop) = (self.url.clone(), self.stop);
            Box::pin(async move {
                let lookup = Request::get(url).body(Full::default()).unwrap();
                let found = service.oneshot(lookup).await.ok();
                match (stop, found) {
                    (false, Some(found)) => CheckVerdict::Respond(found),
                    _ => CheckVerdict::Stop,
                }
            })
        }
    }

    async fn call(
        stop: bool,
    ) -> Result<Response<tower_http_retry::body::ResponseBody<Incoming>>, tower_http_retry::Error>
    {
        let url = one_stream_server().await;
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http::<Full<Bytes>>();
        let policy = RetryPolicy::default()
            .backoff(tower_http_retry::backoff::Backoff::none())
            .deadline(Duration::from_millis(500));
        let check = LookUp {
            url: url.clone(),
            stop,
        };
        let service = tower::ServiceBuilder::new()
            .layer(RetryLayer::new(policy).check_before_retry(check))
            .service(client);
        let request = Request::post(url)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        service.oneshot(request).await
    }

    #[tokio::test]
    async fn the_check_runs_when_the_kept_response_holds_the_only_stream() {
        let response = call(false).await.expect("the check answered");
        assert_eq!(response.status(), StatusCode::OK);
        let history = response
            .extensions()
            .get::<tower_http_retry::RetryHistory>()
            .unwrap()
            .clone();
        assert_eq!(
            history.stop_reason(),
            StopReason::CheckAnswered,
            "{history}"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"found");
    }

    #[tokio::test]
    async fn stop_after_the_kept_response_was_released_ends_with_its_history() {
        let error = call(true).await.expect_err("released, then stopped");
        let history = error.history();
        assert_eq!(history.stop_reason(), StopReason::CheckStopped, "{history}");
        assert_eq!(history.checks()[0].answer, CheckAnswer::Stop, "{history}");
        assert!(history.to_string().starts_with("503"), "{history}");
        assert!(!error.is_deadline(), "not the deadline: {error}");
    }
}
