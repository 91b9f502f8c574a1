//! Replaying streamed bodies through the retry layer, against an in-memory service that reads as much
//! of each attempt's body as its script says, answers, and drops the body or keeps it (a transport
//! still sending it).

use crate::upload;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::body::NotReplayable;
use tower_http_retry::body::{ReplayBody, ReplayBodyLayer, ResponseBody};
use tower_http_retry::history::StopReason;
use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};
use upload::Upload;

/// What a `ReplayBody` records by default: 64 KiB.
const DEFAULT_LIMIT: u64 = 64 * 1024;

/// How much of its body one attempt reads before the server answers.
#[derive(Clone, Copy, Debug)]
enum Read {
    /// None: the server answers before asking for the body.
    Nothing,
    /// Frames until at least this many bytes have arrived.
    Part(u64),
    /// Everything, trailers included.
    All,
}

/// One attempt as the server handles it.
#[derive(Clone, Copy, Debug)]
struct Plan {
    read: Read,
    status: u16,
    /// Keep the body after answering, as a transport still sending it would.
    hold: bool,
}

/// What the server saw of one attempt.
#[derive(Clone, Debug)]
struct Seen {
    body: Vec<u8>,
    trailers: Option<HeaderMap>,
    /// The server polled the body at least once.
    polled: bool,
    /// The body had yielded its end when the server answered.
    finished: bool,
}

/// An in-memory server: the n-th attempt follows the n-th plan (the last plan repeats).
#[derive(Clone)]
struct Server {
    plans: Arc<Vec<Plan>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    held: Arc<Mutex<Vec<ReplayBody<Upload>>>>,
}

impl Server {
    fn new(plans: Vec<Plan>) -> Self {
        Self {
            plans: Arc::new(plans),
            seen: Arc::default(),
            held: Arc::default(),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<String>, BoxError>> + Send>>;

impl Service<Request<ReplayBody<Upload>>> for Server {
    type Response = Response<String>;
    type Error = BoxError;
    type Future = Answer;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReplayBody<Upload>>) -> Answer {
        let server = self.clone();
        Box::pin(async move {
            let attempt = server.seen.lock().unwrap().len();
            let plan = server.plans[attempt.min(server.plans.len() - 1)];
            let mut body = request.into_body();
            let mut seen = Seen {
                body: Vec::new(),
                trailers: None,
                polled: false,
                finished: false,
            };
            loop {
                let enough = match plan.read {
                    Read::Nothing => true,
                    Read::Part(n) => seen.body.len() as u64 >= n,
                    Read::All => false,
                };
                if enough {
                    break;
                }
                seen.polled = true;
                match body.frame().await {
                    None => break,
                    Some(frame) => match frame?.into_data() {
                        Ok(chunk) => seen.body.extend_from_slice(&chunk),
                        Err(frame) => seen.trailers = frame.into_trailers().ok(),
                    },
                }
            }
            seen.finished = body.is_end_stream();
            server.seen.lock().unwrap().push(seen);
            if plan.hold {
                server.held.lock().unwrap().push(body);
            }
            let mut response = Response::new(String::new());
            *response.status_mut() = StatusCode::from_u16(plan.status).unwrap();
            Ok(response)
        })
    }
}

/// Retries at once, so no clock is involved.
fn at_once() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(10)
        .backoff(Backoff::constant(Duration::ZERO).jitter(Jitter::None))
}

async fn send(
    server: &Server,
    limit: u64,
    upload: Upload,
) -> (Response<ResponseBody<String>>, Option<RetryHistory>) {
    let client = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new().limit(limit))
        .layer(RetryLayer::new(at_once()))
        .service(server.clone());
    let request = Request::put("http://api.test/upload").body(upload).unwrap();
    let response = client.oneshot(request).await.expect("a response");
    let history = response.extensions().get::<RetryHistory>().cloned();
    (response, history)
}

fn plan(read: Read, status: u16, hold: bool) -> Plan {
    Plan { read, status, hold }
}

fn upload(text: &'static str, chunk: usize) -> Upload {
    Upload::chunks(text.as_bytes().chunks(chunk).map(Bytes::from_static))
}

fn trailers() -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert("x-checksum", HeaderValue::from_static("3f2a"));
    map
}

const TEXT: &str = "the quick brown fox jumps over the lazy dog";

#[tokio::test]
async fn a_server_answering_before_reading_gets_the_whole_body_on_the_retry() {
    let server = Server::new(vec![
        plan(Read::Nothing, 503, false),
        plan(Read::All, 200, false),
    ]);
    let (response, _) = send(&server, DEFAULT_LIMIT, upload(TEXT, 5)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].body, TEXT.as_bytes(), "every byte once, none lost");
}

#[tokio::test]
async fn a_server_reading_part_of_the_body_gets_the_whole_body_on_the_retry() {
    let server = Server::new(vec![
        plan(Read::Part(12), 503, false),
        plan(Read::Part(30), 503, false),
        plan(Read::All, 200, false),
    ]);
    let body = upload(TEXT, 5).with_trailers(trailers());
    let (response, _) = send(&server, DEFAULT_LIMIT, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen = server.seen();
    assert_eq!(seen[0].body, &TEXT.as_bytes()[..15]);
    assert_eq!(seen[1].body, &TEXT.as_bytes()[..30]);
    assert_eq!(seen[2].body, TEXT.as_bytes());
    assert_eq!(seen[2].trailers, Some(trailers()), "trailers replayed");
}

/// The server keeps the body it has not finished reading: after the wait and a short grace for it to
/// come back, the call ends with the server's answer.
#[tokio::test(start_paused = true)]
async fn a_response_while_the_body_is_still_being_sent_is_not_retried() {
    let server = Server::new(vec![plan(Read::Part(5), 503, true)]);
    let (response, history) = send(&server, DEFAULT_LIMIT, upload(TEXT, 5)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let history = history.expect("the layer wanted to retry");
    assert_eq!(history.attempt_count(), 1);
    assert_eq!(
        history.stop_reason(),
        StopReason::BodyNotReplayable(NotReplayable::StillSending)
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_body_over_the_limit_is_sent_once_whole_and_the_history_says_why() {
    let server = Server::new(vec![plan(Read::All, 503, false)]);
    let (response, history) = send(&server, 16, upload(TEXT, 5)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let history = history.expect("history");
    assert_eq!(
        history.stop_reason(),
        StopReason::BodyNotReplayable(NotReplayable::TooLarge { limit: 16 })
    );
    assert_eq!(
        history.to_string(),
        "503: the request body is over its replay limit of 16 bytes"
    );
    assert_eq!(
        server.seen()[0].body,
        TEXT.as_bytes(),
        "the attempt was unharmed"
    );
}

#[tokio::test]
async fn a_body_known_to_be_over_the_limit_is_never_recorded() {
    let server = Server::new(vec![plan(Read::Nothing, 503, false)]);
    let body = upload(TEXT, 5).exact(true);
    let (_, history) = send(&server, 16, body).await;
    assert_eq!(
        history.expect("history").stop_reason(),
        StopReason::BodyNotReplayable(NotReplayable::TooLarge { limit: 16 })
    );
}

/// 100 MiB through the layer with the default limit: the recording never holds more than 64 KiB.
#[tokio::test]
async fn a_hundred_mib_upload_never_records_more_than_the_limit() {
    const LEN: u64 = 100 << 20;
    let most = Arc::new(Mutex::new((0u64, 0u64)));
    let server = {
        let most = most.clone();
        tower::service_fn(move |request: Request<ReplayBody<Upload>>| {
            let most = most.clone();
            async move {
                let mut body = request.into_body();
                let mut received = 0u64;
                while let Some(frame) = body.frame().await {
                    received += frame?.data_ref().map_or(0, |d| d.len() as u64);
                    let mut most = most.lock().unwrap();
                    most.0 = most.0.max(body.recorded_bytes());
                    most.1 = received;
                }
                let mut response = Response::new(String::new());
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                Ok::<_, BoxError>(response)
            }
        })
    };
    let client = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new())
        .layer(RetryLayer::new(at_once()))
        .service(server);
    let request = Request::put("http://api.test/upload")
        .body(Upload::pattern(LEN, 64 * 1024))
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    let (most, received) = *most.lock().unwrap();
    assert_eq!(received, LEN, "the whole upload went through");
    assert!(most <= DEFAULT_LIMIT, "recorded {most} bytes at most");
    assert_eq!(most, DEFAULT_LIMIT, "the recording filled up to the limit");
    let history = response.extensions().get::<RetryHistory>().unwrap();
    assert_eq!(
        history.stop_reason(),
        StopReason::BodyNotReplayable(NotReplayable::TooLarge {
            limit: DEFAULT_LIMIT
        })
    );
}

/// Splits `payload` at the sizes in `cuts`, cycling through them.
fn chunked(payload: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut rest = payload;
    for cut in cuts.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let n = (*cut).min(rest.len());
        chunks.push(Bytes::copy_from_slice(&rest[..n]));
        rest = &rest[n..];
    }
    if cuts.is_empty() && !payload.is_empty() {
        chunks.push(Bytes::copy_from_slice(payload));
    }
    chunks
}

/// What the layer must do after a 503, given what every attempt so far did.
fn verdict(
    seen: &Seen,
    plan: &Plan,
    exact: bool,
    len: u64,
    read: u64,
    limit: u64,
) -> Option<NotReplayable> {
    // A body known to be too large is never wrapped for replay, whatever happens to it.
    if exact && len > limit {
        Some(NotReplayable::TooLarge { limit })
    } else if plan.hold && seen.polled && !seen.finished {
        Some(NotReplayable::StillSending)
    } else if read > limit {
        Some(NotReplayable::TooLarge { limit })
    } else {
        None
    }
}

fn read_strategy() -> impl Strategy<Value = (u8, prop::sample::Index, bool)> {
    (0u8..3, any::<prop::sample::Index>(), any::<bool>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random payloads, chunkings, failure points and limits: every attempt receives exactly the
    /// original (the part it read of it), or the request is not retried and the history says why.
    #[test]
    fn every_attempt_gets_the_original_or_the_history_says_why(
        payload in prop::collection::vec(any::<u8>(), 0..3000),
        cuts in prop::collection::vec(1usize..800, 0..12),
        with_trailers in any::<bool>(),
        exact in any::<bool>(),
        limit_near_len in 0u8..4,
        any_limit in 0u64..3500,
        failures in prop::collection::vec(read_strategy(), 0..4),
    ) {
        let len = payload.len() as u64;
        // Half the cases put the limit right at the body's length, where off-by-one errors live.
        let limit = match limit_near_len {
            0 => len.saturating_sub(1),
            1 => len,
            _ => any_limit,
        };
        let mut plans: Vec<Plan> = failures
            .iter()
            .map(|(kind, at, hold)| {
                let read = match (kind, len) {
                    (0, _) | (1, 0 | 1) => Read::Nothing,
                    (1, _) => Read::Part(1 + at.index(len as usize - 1) as u64),
                    _ => Read::All,
                };
                plan(read, 503, *hold)
            })
            .collect();
        plans.push(plan(Read::All, 200, false));
        let expected_trailers = with_trailers.then(trailers);
        let mut body = Upload::chunks(chunked(&payload, &cuts)).exact(exact);
        if let Some(t) = expected_trailers.clone() {
            body = body.with_trailers(t);
        }

        let server = Server::new(plans.clone());
        // Paused time: a retry waits a short grace for a held body to come back.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let (response, history) = runtime.block_on(send(&server, limit, body));
        let seen = server.seen();

        // What the server received, attempt by attempt.
        let mut read = 0u64;
        let mut expected_stop = None;
        for (i, attempt) in seen.iter().enumerate() {
            prop_assert!(payload.starts_with(&attempt.body), "attempt {} got other bytes", i);
            if matches!(plans[i].read, Read::All) {
                prop_assert_eq!(&attempt.body, &payload, "attempt {} got a partial body", i);
                prop_assert_eq!(&attempt.trailers, &expected_trailers);
            }
            read = read.max(attempt.body.len() as u64);
            if plans[i].status == 503 {
                expected_stop = verdict(attempt, &plans[i], exact, len, read, limit);
                if expected_stop.is_some() {
                    prop_assert_eq!(seen.len(), i + 1, "retried a body that could not be replayed");
                }
            }
        }
        match expected_stop {
            Some(why) => {
                prop_assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
                let history = history.expect("a history");
                prop_assert_eq!(history.stop_reason(), StopReason::BodyNotReplayable(why));
            }
            None => {
                prop_assert_eq!(response.status(), StatusCode::OK);
                prop_assert_eq!(seen.len(), plans.len(), "every planned attempt was made");
            }
        }
    }
}

use crate::bodies;

/// The hostile body catalogue through the replay body: read a bounded number of frames, then replay.
/// Every size hint stays coherent, nothing panics, and each body is either replayed as recorded or
/// refused with a reason.
#[test]
fn hostile_bodies_through_the_replay_body() {
    use std::task::{Context, Poll, Waker};
    use tower_http_retry::body::ReplayableBody;
    for kind in bodies::CATALOGUE {
        let template = ReplayBody::with_limit(bodies::Hostile::new(kind), 8 * 1024);
        let Ok(mut copy) = template.replay() else {
            assert_eq!(
                kind,
                bodies::Kind::HintTooLarge,
                "refused before a byte is read"
            );
            continue;
        };
        let mut cx = Context::from_waker(Waker::noop());
        let mut sent = Vec::new();
        let mut failed = false;
        for _ in 0..200 {
            let hint = copy.size_hint();
            assert!(
                hint.upper().is_none_or(|upper| upper >= hint.lower()),
                "{kind:?}"
            );
            match Pin::new(&mut copy).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        sent.extend_from_slice(&data);
                    }
                }
                Poll::Ready(Some(Err(_))) => {
                    failed = true;
                    break;
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        drop(copy);
        match template.replay() {
            Ok(again) => {
                assert!(!failed, "{kind:?}: a failed body is not replayed");
                assert!(sent.len() <= 8 * 1024, "{kind:?}");
                let hint = again.size_hint();
                assert!(
                    hint.upper().is_none_or(|upper| upper >= hint.lower()),
                    "{kind:?}"
                );
                if bodies::Hostile::ends_well(kind) {
                    let replayed = futures_collect(again);
                    assert_eq!(replayed, sent, "{kind:?}: the replay sends what was sent");
                }
            }
            Err(why) => assert!(
                matches!(
                    why,
                    NotReplayable::TooLarge { .. } | NotReplayable::BodyFailed
                ),
                "{kind:?}: {why:?}"
            ),
        }
    }
}

/// Reads a body that is always ready to its end.
fn futures_collect<B: Body<Data = Bytes> + Unpin>(mut body: B) -> Vec<u8>
where
    B::Error: std::fmt::Debug,
{
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    let mut all = Vec::new();
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    all.extend_from_slice(&data);
                }
            }
            Poll::Ready(None) => return all,
            other => panic!(
                "not always ready: {:?}",
                other.map(|o| o.map(|r| r.is_ok()))
            ),
        }
    }
}

/// A transport that lets go of the body a moment after answering (hyper's HTTP/2 pipe does, after a
/// REFUSED_STREAM or an early response): the retry waits for it past a zero backoff, and leaves the
/// moment it is back, not at the end of the grace.
#[tokio::test(start_paused = true)]
async fn a_retry_waits_for_the_body_and_leaves_as_soon_as_it_is_back() {
    let calls = Arc::new(Mutex::new(0u32));
    let server = {
        let calls = calls.clone();
        tower::service_fn(move |request: Request<ReplayBody<Upload>>| {
            let calls = calls.clone();
            async move {
                let mut body = request.into_body();
                let first = {
                    let mut calls = calls.lock().unwrap();
                    *calls += 1;
                    *calls == 1
                };
                let status = if first {
                    // Read a little, answer, and drop the body 10 ms later.
                    let _ = body.frame().await;
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        drop(body);
                    });
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    while body.frame().await.is_some() {}
                    StatusCode::OK
                };
                let mut response = Response::new(String::new());
                *response.status_mut() = status;
                Ok::<_, BoxError>(response)
            }
        })
    };
    let client = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new())
        .layer(RetryLayer::new(at_once()))
        .service(server);
    let start = tokio::time::Instant::now();
    let request = Request::put("http://api.test/upload")
        .body(upload(TEXT, 5))
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(*calls.lock().unwrap(), 2);
    assert_eq!(start.elapsed(), Duration::from_millis(10));
}
