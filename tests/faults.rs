//! Never duplicate a side effect: 10,000 POSTs, 64 in flight, 30% of attempts faulted, over real sockets
//! against a server that logs every execution (`support/faults.rs`), with and without idempotency keys.
//!
//! The counts are printed; `cargo test --test faults -- --nocapture` shows them.

use retry_test_support::faults;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use faults::{Answer, Attempt, Fault, FaultServer, RefusingConnector, Schedule, REQUEST_ID};
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::Backoff;
use tower_http_retry::classify::ErrorKind;
use tower_http_retry::history::AttemptOutcome;
use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};

const REQUESTS: u64 = 10_000;
const IN_FLIGHT: u64 = 64;
const FAULT_RATE: f64 = 0.30;
/// The share of new connections the client's connector sends to a refusing port.
const REFUSAL_RATE: f64 = 0.30;
const SEED: u64 = 0x5EED_1DE4_7E57;
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(100);
/// A slow answer comes twice as late as the client waits for it.
const SLOW: Duration = Duration::from_millis(200);
/// The whole run must end well within this; past it, some request was lost.
const RUN_LIMIT: Duration = Duration::from_secs(120);

fn schedule() -> Schedule {
    Schedule {
        seed: SEED,
        rate: FAULT_RATE,
        faults: Fault::ALL.to_vec(),
        slow: SLOW,
    }
}

fn policy() -> RetryPolicy {
    // 30% of attempts fail here, far past what the default 10% retry budget funds: this test is about
    // side effects, not storms, so every failure gets its retries.
    RetryPolicy::default()
        .no_retry_budget()
        .max_attempts(16)
        .attempt_timeout(ATTEMPT_TIMEOUT)
        .backoff(
            Backoff::exponential(Duration::from_millis(5)).max_delay(Duration::from_millis(40)),
        )
        .seed(SEED)
}

/// What the client reported for one request.
struct Reported {
    id: u64,
    /// The final status, or `None` for an error.
    status: Option<StatusCode>,
    history: Option<RetryHistory>,
}

impl Reported {
    fn is_success(&self) -> bool {
        self.status.is_some_and(|s| s.is_success())
    }

    /// Attempts the client made (a response without history took one).
    fn attempts(&self) -> u32 {
        self.history.as_ref().map_or(1, RetryHistory::attempt_count)
    }
}

/// Sends every request, `IN_FLIGHT` at a time, and returns what the client reported for each.
async fn run(
    policy: RetryPolicy,
    server: &FaultServer,
    connector: RefusingConnector,
) -> Vec<Reported> {
    let client = Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(connector);
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(client);
    let next = Arc::new(AtomicU64::new(0));
    let url = server.url("/v1/charges");
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (service, next, url) = (service.clone(), next.clone(), url.clone());
            tokio::spawn(async move {
                let mut reported = Vec::new();
                loop {
                    let id = next.fetch_add(1, Ordering::SeqCst);
                    if id >= REQUESTS {
                        return reported;
                    }
                    let request = Request::post(&url)
                        .header(REQUEST_ID, id)
                        .body(Full::new(Bytes::from(format!("{{\"charge\":{id}}}"))))
                        .unwrap();
                    reported.push(match service.clone().oneshot(request).await {
                        Ok(response) => Reported {
                            id,
                            status: Some(response.status()),
                            history: response.extensions().get::<RetryHistory>().cloned(),
                        },
                        Err(error) => Reported {
                            id,
                            status: None,
                            history: Some(error.history().clone()),
                        },
                    });
                }
            })
        })
        .collect();
    let all = async {
        let mut reported = Vec::new();
        for worker in workers {
            reported.extend(worker.await.expect("a worker panicked"));
        }
        reported
    };
    tokio::time::timeout(RUN_LIMIT, all)
        .await
        .expect("every request ends within the run limit")
}

/// Every request reported exactly once: none lost, none doubled.
fn assert_none_lost(reported: &[Reported]) {
    let ids: HashSet<u64> = reported.iter().map(|r| r.id).collect();
    assert_eq!(reported.len() as u64, REQUESTS);
    assert_eq!(ids.len() as u64, REQUESTS);
}

/// Executions per request id.
fn executions_by_id(server: &FaultServer) -> HashMap<u64, u32> {
    let mut executed = HashMap::new();
    for execution in server.executions() {
        *executed.entry(execution.request_id).or_insert(0) += 1;
    }
    executed
}

/// The server's attempts per request id, in the order it saw them.
fn attempts_by_id(server: &FaultServer) -> HashMap<u64, Vec<Attempt>> {
    let mut by_id: HashMap<u64, Vec<Attempt>> = HashMap::new();
    for attempt in server.attempts() {
        by_id.entry(attempt.request_id).or_default().push(attempt);
    }
    for attempts in by_id.values_mut() {
        attempts.sort_by_key(|a| a.nth);
    }
    by_id
}

fn count_answers(server: &FaultServer) -> HashMap<Answer, usize> {
    let mut counts = HashMap::new();
    for attempt in server.attempts() {
        *counts.entry(attempt.answer).or_insert(0) += 1;
    }
    counts
}

/// The counts both runs report and assert on.
struct Counts {
    requests: usize,
    client_attempts: u64,
    server_attempts: usize,
    successes: usize,
    executions: u32,
    duplicates: u32,
    failures: String,
}

fn counts(reported: &[Reported], server: &FaultServer) -> Counts {
    let executed = executions_by_id(server);
    Counts {
        requests: reported.len(),
        client_attempts: reported.iter().map(|r| u64::from(r.attempts())).sum(),
        server_attempts: server.attempts().len(),
        successes: reported.iter().filter(|r| r.is_success()).count(),
        executions: executed.values().sum(),
        duplicates: executed.values().map(|n| n.saturating_sub(1)).sum(),
        failures: failures(reported),
    }
}

/// How the requests that did not succeed ended: `503 (...) x2, error AttemptTimeout (...) x5`.
fn failures(reported: &[Reported]) -> String {
    let mut ends: HashMap<String, usize> = HashMap::new();
    for r in reported.iter().filter(|r| !r.is_success()) {
        let outcome = match (r.status, &r.history) {
            (Some(status), _) => status.as_u16().to_string(),
            (None, Some(h)) => format!(
                "error {}",
                h.attempts()
                    .last()
                    .map_or("none".into(), |a| format!("{:?}", a.outcome))
            ),
            (None, None) => "error".into(),
        };
        let stop = r
            .history
            .as_ref()
            .map_or("first answer".into(), |h| h.stop_reason().to_string());
        *ends.entry(format!("{outcome} ({stop})")).or_insert(0) += 1;
    }
    let mut ends: Vec<_> = ends
        .into_iter()
        .map(|(end, n)| format!("{end} x{n}"))
        .collect();
    ends.sort();
    if ends.is_empty() {
        return "none".into();
    }
    ends.join(", ")
}

fn print(
    title: &str,
    c: &Counts,
    elapsed: Duration,
    answers: &HashMap<Answer, usize>,
    extra: &str,
) {
    let get = |a: Answer| answers.get(&a).copied().unwrap_or(0);
    println!(
        "{title}: requests {}, attempts {} (server saw {}), successes {}, executions {}, duplicates {}, \
         in {:.1}s\n  server answers: created {}, replayed {}, 409 in flight {}, 422 {}, 503 {}, 429 {}, \
         408 {}, reset {}, late {}\n  {extra}\n  not successful: {}",
        c.requests,
        c.client_attempts,
        c.server_attempts,
        c.successes,
        c.executions,
        c.duplicates,
        elapsed.as_secs_f64(),
        get(Answer::Created),
        get(Answer::Replayed),
        get(Answer::InFlight),
        get(Answer::KeyReused),
        get(Answer::Refused(StatusCode::SERVICE_UNAVAILABLE)),
        get(Answer::Refused(StatusCode::TOO_MANY_REQUESTS)),
        get(Answer::Refused(StatusCode::REQUEST_TIMEOUT)),
        get(Answer::Reset),
        get(Answer::Late),
        c.failures,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_key_injection_every_success_ran_exactly_once() {
    let server = FaultServer::start(
        schedule(),
        Some(http::HeaderName::from_static("idempotency-key")),
    )
    .await;
    let connector = RefusingConnector::new(SEED, REFUSAL_RATE);
    let started = Instant::now();
    let reported = run(
        policy().inject_idempotency_keys(),
        &server,
        connector.clone(),
    )
    .await;
    let elapsed = started.elapsed();

    let counts = counts(&reported, &server);
    let answers = count_answers(&server);
    let replays = reported
        .iter()
        .filter(|r| r.history.as_ref().is_some_and(RetryHistory::is_replayed))
        .count();
    let errors = reported.iter().filter(|r| r.status.is_none()).count();
    print(
        "with key injection",
        &counts,
        elapsed,
        &answers,
        &format!(
            "client: {replays} successes reported as replays, {errors} errors; connector: {} connects, {} refused",
            connector.connects(),
            connector.refusals()
        ),
    );

    assert_none_lost(&reported);
    assert_eq!(counts.duplicates, 0, "a side effect ran twice");
    let executed = executions_by_id(&server);
    let by_id = attempts_by_id(&server);
    let mut keys = HashSet::new();
    for r in &reported {
        let history = r
            .history
            .as_ref()
            .expect("a keyed request always carries its history");
        let key = history.idempotency_key().expect("every POST got a key");
        assert!(keys.insert(key.clone()), "two requests shared a key");
        let seen = by_id.get(&r.id).map(Vec::as_slice).unwrap_or_default();
        assert!(
            seen.iter().all(|a| a.key.as_ref() == Some(key)),
            "request {} was sent with another key than {key:?}",
            r.id
        );
        if r.is_success() {
            assert_eq!(executed.get(&r.id), Some(&1), "request {} succeeded", r.id);
            // The answer the client took is one the server gave: a replay mark only where the
            // server answered with a replay. Not necessarily the last attempt the server logged:
            // an attempt the client abandoned (its answer late) may reach the server after the
            // retry that succeeded.
            let answered = |kind: Answer| seen.iter().any(|a| a.answer == kind);
            let expected = match history.is_replayed() {
                true => Answer::Replayed,
                false => Answer::Created,
            };
            assert!(
                answered(expected),
                "request {}: the replay mark follows the server's answer ({seen:?})",
                r.id
            );
        }
    }
    assert_eq!(
        answers.get(&Answer::KeyReused),
        None,
        "every retry replayed the same payload"
    );
    assert!(
        counts.successes as f64 >= 0.99 * REQUESTS as f64,
        "the layer recovers from the faults"
    );
    for answer in [
        Answer::Replayed,
        Answer::InFlight,
        Answer::Reset,
        Answer::Late,
    ] {
        assert!(answers.contains_key(&answer), "{answer:?} was exercised");
    }
    assert!(replays > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_posts_are_resent_only_when_they_cannot_have_run() {
    let server = FaultServer::start(schedule(), None).await;
    let connector = RefusingConnector::new(SEED, REFUSAL_RATE);
    let started = Instant::now();
    let reported = run(policy(), &server, connector.clone()).await;
    let elapsed = started.elapsed();

    let counts = counts(&reported, &server);
    let answers = count_answers(&server);

    // Every retry the client made, by what the attempt before it produced.
    let mut resent_after: HashMap<AttemptOutcome, usize> = HashMap::new();
    for r in &reported {
        let Some(history) = &r.history else { continue };
        for attempt in history.attempts().iter().filter(|a| a.wait.is_some()) {
            *resent_after.entry(attempt.outcome).or_insert(0) += 1;
        }
    }
    let status = |code: u16| AttemptOutcome::Status(StatusCode::from_u16(code).unwrap());
    let never_sent = AttemptOutcome::Error(ErrorKind::Connect);
    let get = |o: AttemptOutcome| resent_after.get(&o).copied().unwrap_or(0);
    let errors = reported.iter().filter(|r| r.status.is_none()).count();
    print(
        "without keys",
        &counts,
        elapsed,
        &answers,
        &format!(
            "client: re-sent after 408 {}, after 429 {}, after a refused connection {}, {errors} errors; \
             connector: {} connects, {} refused",
            get(status(408)),
            get(status(429)),
            get(never_sent),
            connector.connects(),
            connector.refusals()
        ),
    );

    assert_none_lost(&reported);
    assert_eq!(counts.duplicates, 0, "a side effect ran twice");
    let executed = executions_by_id(&server);
    for r in reported.iter().filter(|r| r.is_success()) {
        assert_eq!(executed.get(&r.id), Some(&1), "request {} succeeded", r.id);
    }
    // From the server's log: a request id shows up again only after a 429 (a refused connection never
    // reaches the server, so it leaves no attempt behind). A 408 may have been made by a layer after
    // the server ran the request, so it is not re-sent without a key.
    for (id, attempts) in attempts_by_id(&server) {
        for earlier in &attempts[..attempts.len() - 1] {
            assert!(
                matches!(
                    earlier.answer,
                    Answer::Refused(StatusCode::TOO_MANY_REQUESTS)
                ),
                "request {id} was re-sent after {:?}",
                earlier.answer
            );
        }
    }
    // From the client's history: the same, with the never-sent failures it saw.
    for outcome in resent_after.keys() {
        assert!(
            [status(429), never_sent].contains(outcome),
            "a POST was re-sent after {outcome:?}"
        );
    }
    assert_eq!(
        get(status(408)),
        0,
        "an unkeyed POST is not re-sent after a 408"
    );
    for outcome in [status(429), never_sent] {
        assert!(
            get(outcome) > 0,
            "re-sending after {outcome:?} was exercised"
        );
    }
    assert!(answers.contains_key(&Answer::Reset) && answers.contains_key(&Answer::Late));
}

#[test]
fn the_schedule_is_seeded() {
    let a = schedule();
    let draws = |s: &Schedule| -> Vec<Option<Fault>> {
        (0..1000)
            .flat_map(|id| (0..3).map(move |n| (id, n)))
            .map(|(id, n)| s.draw(id, n))
            .collect()
    };
    assert_eq!(draws(&a), draws(&schedule()));
    let other = Schedule {
        seed: SEED + 1,
        ..schedule()
    };
    assert_ne!(draws(&a), draws(&other));
    let faulted = draws(&a).iter().filter(|d| d.is_some()).count();
    assert!(
        (800..1000).contains(&faulted),
        "about 30% of 3000 attempts: {faulted}"
    );
}
