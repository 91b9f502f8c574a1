//! gRPC over a real socket: a tonic health server on 127.0.0.1 and tonic's generated client, with the
//! retry layer between the client and its `Channel`.

#![cfg(feature = "grpc")]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tower::ServiceBuilder;
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::body::ResponseBody;
use tower_http_retry::grpc::{GrpcCode, GrpcRetryLayer};
use tower_http_retry::history::{AttemptOutcome, WaitReason};
use tower_http_retry::{RetryHistory, RetryPolicy};

/// One answer of the scripted server: a status code (`Ok` means SERVING), its pushback header, and how
/// long the server takes to give it.
#[derive(Clone, Copy)]
struct Answer {
    code: Code,
    pushback: Option<&'static str>,
    delay: Duration,
}

const SERVING: Answer = Answer {
    code: Code::Ok,
    pushback: None,
    delay: Duration::ZERO,
};

fn fail(code: Code) -> Answer {
    Answer { code, ..SERVING }
}

fn pushback(code: Code, ms: &'static str) -> Answer {
    Answer {
        code,
        pushback: Some(ms),
        ..SERVING
    }
}

/// SERVING, after `delay`.
fn slow(delay: Duration) -> Answer {
    Answer { delay, ..SERVING }
}

/// What the server saw of one call.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    previous_attempts: Option<String>,
    timeout: Option<String>,
    /// The request message's field: the body as the server decoded it.
    service: String,
}

/// A health service that answers from a script (the last answer repeats) and records every call.
#[derive(Clone)]
struct Scripted {
    script: Arc<Mutex<VecDeque<Answer>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn header(metadata: &MetadataMap, name: &str) -> Option<String> {
    metadata
        .get(name)
        .map(|value| value.to_str().unwrap().to_owned())
}

#[tonic::async_trait]
impl Health for Scripted {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.seen.lock().unwrap().push(Seen {
            at: Instant::now(),
            previous_attempts: header(request.metadata(), "grpc-previous-rpc-attempts"),
            timeout: header(request.metadata(), "grpc-timeout"),
            service: request.get_ref().service.clone(),
        });
        let answer = {
            let mut script = self.script.lock().unwrap();
            match script.len() {
                1 => script[0],
                _ => script.pop_front().unwrap(),
            }
        };
        tokio::time::sleep(answer.delay).await;
        if answer.code == Code::Ok {
            return Ok(Response::new(HealthCheckResponse {
                status: ServingStatus::Serving as i32,
            }));
        }
        let mut metadata = MetadataMap::new();
        if let Some(ms) = answer.pushback {
            metadata.insert("grpc-retry-pushback-ms", ms.parse().unwrap());
        }
        Err(Status::with_metadata(answer.code, "scripted", metadata))
    }

    type WatchStream = tonic::codegen::tokio_stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("not scripted"))
    }
}

/// Starts the server on 127.0.0.1 with `script`; returns its address and what it saw.
async fn serve(script: &[Answer]) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = Scripted {
        script: Arc::new(Mutex::new(script.iter().copied().collect())),
        seen: Arc::default(),
    };
    let seen = service.seen.clone();
    tokio::spawn(
        Server::builder()
            .add_service(HealthServer::new(service))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    (addr, seen)
}

/// Short waits: the tests run on real time.
fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .no_retry_budget()
        .backoff(Backoff::constant(Duration::from_millis(5)).jitter(Jitter::None))
}

/// The generated client over the channel, with the retry layer in one line.
async fn connect(
    addr: SocketAddr,
    policy: RetryPolicy,
) -> HealthClient<
    impl tonic::client::GrpcService<
            tonic::body::Body,
            ResponseBody = ResponseBody<tonic::body::Body>,
            Error = tower_http_retry::Error,
        > + Clone,
> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let channel = ServiceBuilder::new()
        .layer(GrpcRetryLayer::new(tonic::body::Body::new).policy(policy))
        .service(channel);
    HealthClient::new(channel)
}

fn check() -> Request<HealthCheckRequest> {
    Request::new(HealthCheckRequest {
        service: "payments".into(),
    })
}

/// Reads a `grpc-timeout` value ("100m", "99123456n").
fn grpc_timeout(value: &str) -> Duration {
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().unwrap();
    match unit {
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => panic!("unexpected unit in {value}"),
    }
}

fn history<T>(response: &Response<T>) -> &RetryHistory {
    response.extensions().get::<RetryHistory>().unwrap()
}

#[tokio::test]
async fn unavailable_and_resource_exhausted_are_retried_and_each_retry_is_numbered() {
    let script = [
        fail(Code::Unavailable),
        fail(Code::ResourceExhausted),
        SERVING,
    ];
    let (addr, seen) = serve(&script).await;
    let policy = policy().backoff_for(
        tower_http_retry::classify::RetryClass::Throttling,
        Backoff::constant(Duration::from_millis(5)).jitter(Jitter::None),
    );
    let mut client = connect(addr, policy).await;

    let response = client.check(check()).await.unwrap();
    assert_eq!(response.get_ref().status, ServingStatus::Serving as i32);

    let history = history(&response);
    let outcomes: Vec<_> = history.attempts().iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes[..2],
        [
            AttemptOutcome::Grpc(GrpcCode::Unavailable),
            AttemptOutcome::Grpc(GrpcCode::ResourceExhausted)
        ]
    );
    // A success's grpc-status comes in the trailers, after the head the layer decides on: its
    // attempt is the HTTP status, as the `grpc` module's docs show.
    assert_eq!(
        history.to_string(),
        "UNAVAILABLE (wait 5ms backoff), RESOURCE_EXHAUSTED (wait 5ms backoff), 200: the outcome was final"
    );
    let previous: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.previous_attempts.clone())
        .collect();
    assert_eq!(previous, [None, Some("1".into()), Some("2".into())]);
    let bodies: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.service.clone())
        .collect();
    assert_eq!(
        bodies, ["payments"; 3],
        "every attempt carried the whole message"
    );
}

#[tokio::test]
async fn invalid_argument_is_not_retried() {
    let (addr, seen) = serve(&[fail(Code::InvalidArgument), SERVING]).await;
    let mut client = connect(addr, policy()).await;

    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn pushback_sets_the_wait_and_a_negative_one_stops_the_retries() {
    let (addr, seen) = serve(&[pushback(Code::Unavailable, "30"), SERVING]).await;
    // The backoff alone would wait 200 ms: the server's 30 ms is the wait, not a floor under it.
    let slow = policy().backoff(Backoff::constant(Duration::from_millis(200)).jitter(Jitter::None));
    let mut client = connect(addr, slow).await;
    let response = client.check(check()).await.unwrap();
    let wait = history(&response).attempts()[0].wait.unwrap();
    assert_eq!(wait.duration, Duration::from_millis(30));
    assert_eq!(wait.reason, WaitReason::GrpcPushback);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1].at - seen[0].at >= Duration::from_millis(30),
        "the retry left before the pushback ended: {:?}",
        seen[1].at - seen[0].at
    );

    let (addr, seen) = serve(&[pushback(Code::Unavailable, "-1"), SERVING]).await;
    let mut client = connect(addr, policy()).await;
    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "a negative pushback means no retry"
    );
}

#[tokio::test]
async fn the_callers_grpc_timeout_bounds_every_retry() {
    // Unavailable forever, each time asking for 30 ms; the call has 100 ms.
    let (addr, seen) = serve(&[pushback(Code::Unavailable, "30")]).await;
    let mut client = connect(addr, policy().max_attempts(100)).await;
    let mut request = check();
    request.set_timeout(Duration::from_millis(100));

    let status = client.check(request).await.unwrap_err();
    let ended = Instant::now();
    // Usually the layer declines a wait that would end past the deadline and returns the last
    // UNAVAILABLE. On a loaded machine an attempt may still be in flight when the deadline passes: then
    // the call is DEADLINE_EXCEEDED.
    assert!(
        matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{status:?}"
    );
    let seen = seen.lock().unwrap().clone();
    // 100 ms holds at most the first attempt and three 30 ms waits (fewer on a loaded machine); without
    // the deadline the policy would make 100.
    assert!(seen.len() <= 4, "{} attempts", seen.len());
    assert!(ended >= seen.last().unwrap().at);
    // Each retry tells the server the time the call has left, never more than the caller gave.
    let first = seen[0].timeout.clone().unwrap();
    for retry in &seen[1..] {
        let left = retry.timeout.clone().unwrap();
        assert_ne!(left, first);
        assert!(
            grpc_timeout(&left) < grpc_timeout(&first),
            "{left} after {first}"
        );
        assert!(grpc_timeout(&left) < Duration::from_millis(100), "{left}");
    }
}

fn metadata(status: &Status, name: &str) -> Option<String> {
    header(status.metadata(), name)
}

#[tokio::test]
async fn a_failed_call_carries_its_attempts_and_why_it_stopped_in_the_status_metadata() {
    let (addr, _) = serve(&[fail(Code::Unavailable)]).await;
    let mut client = connect(addr, policy().max_attempts(3)).await;

    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.message(),
        "scripted",
        "the server's own status is kept"
    );
    assert_eq!(metadata(&status, "x-retry-attempts").as_deref(), Some("3"));
    assert_eq!(
        metadata(&status, "x-retry-stop").as_deref(),
        Some("attempts_exhausted")
    );
    assert_eq!(
        metadata(&status, "x-retry-history").as_deref(),
        Some(
            "UNAVAILABLE (wait 5ms backoff), UNAVAILABLE (wait 5ms backoff), UNAVAILABLE: the attempt limit was reached"
        )
    );
}

#[tokio::test]
async fn a_call_that_fails_for_good_at_once_says_it_made_one_attempt() {
    let (addr, _) = serve(&[fail(Code::InvalidArgument)]).await;
    let mut client = connect(addr, policy()).await;

    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(metadata(&status, "x-retry-attempts").as_deref(), Some("1"));
    assert_eq!(
        metadata(&status, "x-retry-stop").as_deref(),
        Some("finished")
    );
}

#[tokio::test]
async fn a_successful_call_that_retried_carries_its_history_in_the_response_metadata() {
    let (addr, _) = serve(&[fail(Code::Unavailable), SERVING]).await;
    let mut client = connect(addr, policy()).await;

    let response = client.check(check()).await.unwrap();
    assert_eq!(
        header(response.metadata(), "x-retry-attempts").as_deref(),
        Some("2")
    );
    assert_eq!(
        header(response.metadata(), "x-retry-history").as_deref(),
        Some("UNAVAILABLE (wait 5ms backoff), 200: the outcome was final")
    );
}

#[tokio::test]
async fn the_stop_event_fires_for_a_failed_call() {
    use tower_http_retry::history::StopReason;
    use tower_http_retry::RetryEvent;

    let (addr, _) = serve(&[fail(Code::Unavailable)]).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let policy = policy()
        .max_attempts(2)
        .on_retry(move |event| seen.lock().unwrap().push(*event));
    let mut client = connect(addr, policy).await;

    client.check(check()).await.unwrap_err();
    let events = events.lock().unwrap().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        matches!(events[0], RetryEvent::Retry { attempt: 1, .. }),
        "{events:?}"
    );
    assert!(
        matches!(
            events[1],
            RetryEvent::Stop {
                attempts: 2,
                outcome: Some(AttemptOutcome::Grpc(GrpcCode::Unavailable)),
                reason: StopReason::AttemptsExhausted,
                ..
            }
        ),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_grpc_timeout_passing_during_an_attempt_is_deadline_exceeded() {
    let (addr, seen) = serve(&[slow(Duration::from_millis(500))]).await;
    let mut client = connect(addr, policy()).await;
    let mut request = check();
    request.set_timeout(Duration::from_millis(100));

    let status = client.check(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        metadata(&status, "x-retry-stop").as_deref(),
        Some("deadline")
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_policys_deadline_passing_during_an_attempt_is_deadline_exceeded() {
    let (addr, _) = serve(&[slow(Duration::from_millis(500))]).await;
    let mut client = connect(addr, policy().deadline(Duration::from_millis(100))).await;

    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(metadata(&status, "x-retry-attempts").as_deref(), Some("1"));
}

/// An h2 server on 127.0.0.1 that hands each stream, with how many came before it, to `answer`;
/// returns its address and how many streams it got.
#[cfg(feature = "http2")]
async fn h2_server(
    answer: impl Fn(usize, h2::server::SendResponse<bytes::Bytes>) + Clone + Send + 'static,
) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let streams = Arc::new(AtomicUsize::new(0));
    let count = streams.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (count, answer) = (count.clone(), answer.clone());
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(socket).await else {
                    return;
                };
                while let Some(Ok((_request, respond))) = connection.accept().await {
                    answer(count.fetch_add(1, Ordering::SeqCst), respond);
                }
            });
        }
    });
    (addr, streams)
}

/// An h2 server that resets every stream with `reason` as soon as it has the request's head; returns
/// its address and how many streams it reset.
#[cfg(feature = "http2")]
async fn resetting(reason: h2::Reason) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    h2_server(move |_, mut respond| respond.send_reset(reason)).await
}

#[cfg(feature = "http2")]
#[tokio::test]
async fn a_stream_reset_with_internal_error_or_protocol_error_is_internal() {
    for reason in [h2::Reason::INTERNAL_ERROR, h2::Reason::PROTOCOL_ERROR] {
        let (addr, resets) = resetting(reason).await;
        let mut client = connect(addr, policy()).await;

        let status = client.check(check()).await.unwrap_err();
        assert_eq!(status.code(), Code::Internal, "{reason:?}: {status:?}");
        // The server may have processed it: not sent again.
        assert_eq!(resets.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(metadata(&status, "x-retry-attempts").as_deref(), Some("1"));
    }
}

#[cfg(feature = "http2")]
#[tokio::test]
async fn a_stream_reset_with_cancel_is_cancelled() {
    let (addr, _) = resetting(h2::Reason::CANCEL).await;
    let mut client = connect(addr, policy()).await;

    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    assert_eq!(metadata(&status, "x-retry-attempts").as_deref(), Some("1"));
}

#[cfg(feature = "http2")]
#[tokio::test]
async fn a_refused_stream_is_retried_and_then_unavailable() {
    let (addr, resets) = resetting(h2::Reason::REFUSED_STREAM).await;
    let mut client = connect(addr, policy().max_attempts(3)).await;

    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(resets.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(metadata(&status, "x-retry-attempts").as_deref(), Some("3"));
    assert_eq!(
        metadata(&status, "x-retry-stop").as_deref(),
        Some("attempts_exhausted")
    );
}

#[tokio::test]
async fn any_other_failure_keeps_the_history_in_the_status_source() {
    // A port nobody listens on: every attempt fails to connect.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let channel = ServiceBuilder::new()
        .layer(GrpcRetryLayer::new(tonic::body::Body::new).policy(policy().max_attempts(2)))
        .service(channel);
    let mut client = HealthClient::new(channel);

    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let error = std::error::Error::source(&status)
        .and_then(|source| source.downcast_ref::<tower_http_retry::Error>())
        .expect("the layer's error is the status's source");
    assert_eq!(error.history().attempt_count(), 2);
}

#[tokio::test]
async fn pushback_to_two_calls_holds_their_method_for_a_third_and_no_other_method() {
    let pushed = pushback(Code::Unavailable, "80");
    let (addr, seen) = serve(&[pushed, pushed, SERVING]).await;
    let client = connect(addr, policy()).await;
    let start = Instant::now();
    let (mut a, mut b, mut c) = (client.clone(), client.clone(), client.clone());
    let later = async {
        // Both answers are back well within this; the route is held until about 80 ms.
        while seen.lock().unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Another method of the same channel is not held: answered (unimplemented) at once.
        let watched = c.watch(check()).await.unwrap_err();
        assert_eq!(watched.code(), Code::Unimplemented);
        assert!(
            start.elapsed() < Duration::from_millis(60),
            "{:?}",
            start.elapsed()
        );
        // A third call of the held method waits for the route with the two told to.
        c.check(check()).await
    };
    let (a, b, third) = tokio::join!(a.check(check()), b.check(check()), later);
    for response in [a, b, third] {
        assert_eq!(
            response.unwrap().get_ref().status,
            ServingStatus::Serving as i32
        );
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 5, "two told, their retries, the third");
    let answered = seen[1].at;
    assert!(
        seen[2..]
            .iter()
            .all(|s| s.at >= answered + Duration::from_millis(75)),
        "a call of the held route left early: {:?}",
        seen.iter().map(|s| s.at - seen[0].at).collect::<Vec<_>>()
    );
}

/// An h2 server that answers the first call with a 200 head and then `UNAVAILABLE` in the trailers
/// (a status that arrives after the response has begun), and every later call with SERVING; returns
/// its address and how many calls it answered.
#[cfg(feature = "http2")]
async fn unavailable_in_trailers_then_serving() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>)
{
    h2_server(|before, mut respond| {
        let head = http::Response::builder()
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        let mut send = respond.send_response(head, false).unwrap();
        let mut trailers = http::HeaderMap::new();
        if before == 0 {
            trailers.insert("grpc-status", "14".parse().unwrap());
            trailers.insert("grpc-message", "overloaded".parse().unwrap());
        } else {
            // One message: HealthCheckResponse { status: SERVING }.
            let message = bytes::Bytes::from_static(&[0, 0, 0, 0, 2, 0x08, 0x01]);
            send.send_data(message, false).unwrap();
            trailers.insert("grpc-status", "0".parse().unwrap());
        }
        send.send_trailers(trailers).unwrap();
    })
    .await
}

#[cfg(feature = "http2")]
#[tokio::test]
async fn a_unary_status_in_the_trailers_is_retried_when_responses_are_buffered() {
    let (addr, calls) = unavailable_in_trailers_then_serving().await;
    let policy = policy().buffer_responses(64 * 1024);
    let mut client = connect(addr, policy).await;

    let response = client.check(check()).await.unwrap();
    assert_eq!(response.get_ref().status, ServingStatus::Serving as i32);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    let outcomes: Vec<_> = history(&response)
        .attempts()
        .iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes[0], AttemptOutcome::Grpc(GrpcCode::Unavailable));
}

#[cfg(feature = "http2")]
#[tokio::test]
async fn a_unary_status_in_the_trailers_is_final_when_responses_stream() {
    // The head has begun the answer and reached the caller: committed, as A6 says.
    let (addr, calls) = unavailable_in_trailers_then_serving().await;
    let mut client = connect(addr, policy()).await;

    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}
