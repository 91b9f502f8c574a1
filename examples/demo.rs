//! A tour of the retry layer against a real HTTP/1.1 server on 127.0.0.1.
//!
//! Every request goes to its own path, whose script says what the server answers on the first,
//! second, ... attempt. For each request the demo prints what the server was scripted to do, every
//! attempt with the wait that followed it, and the outcome; then totals from both sides.
//!
//! Run it with `cargo run --example demo`. It exits with status 1 when a request ends differently from
//! what the crate promises, so CI notices.

use retry_test_support::server;

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::Backoff;
use tower_http_retry::budget::RetryBudget;
use tower_http_retry::check::{CheckBeforeRetry, CheckRequest, CheckVerdict};
use tower_http_retry::history::{AttemptOutcome, StopReason, WaitReason};
use tower_http_retry::{BoxError, CallSettings, RetryHistory, RetryLayer, RetryPolicy};

use server::{Reply, Server};

/// One request of the tour and what it must end with.
struct Scenario {
    method: Method,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    /// What the server was scripted to do, in words.
    story: &'static str,
    script: Vec<Reply>,
    /// Every attempt's outcome and the reason of the wait after it, as `trail` writes them without
    /// durations (backoff is jittered, so durations are not compared).
    trail: &'static str,
    status: u16,
    stop: StopReason,
    /// The delay the last response asked for with `Retry-After`.
    retry_after: Option<Duration>,
    /// Settings for this call only, put on the request.
    settings: Option<CallSettings>,
    /// Sent through the client whose layer looks for the job before re-sending a create.
    checked: bool,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn scenarios() -> Vec<Scenario> {
    let ok = || Reply::status(200).body("ok");
    let get = |path, story, script, trail, status, stop| Scenario {
        method: Method::GET,
        path,
        headers: &[],
        body: "",
        story,
        script,
        trail,
        status,
        stop,
        retry_after: None,
        settings: None,
        checked: false,
    };
    use StopReason::*;
    vec![
        get(
            "/flaky",
            "503, 503, then 200",
            vec![Reply::status(503), Reply::status(503), ok()],
            "503 (backoff), 503 (backoff), 200",
            200,
            Finished,
        ),
        get(
            "/throttled",
            "429 with Retry-After: 1, then 200",
            vec![Reply::status(429).header("retry-after", 1), ok()],
            "429 (retry-after), 200",
            200,
            Finished,
        ),
        get(
            "/reset",
            "resets the connection, then 200",
            vec![Reply::Reset, ok()],
            "reset (backoff), 200",
            200,
            Finished,
        ),
        get(
            "/slow",
            "200 after 1 s (past the 300 ms attempt timeout), then 200 at once",
            vec![ok().after(ms(1000)), ok()],
            "attempt_timeout (backoff), 200",
            200,
            Finished,
        ),
        get(
            "/bad-request",
            "400",
            vec![Reply::status(400)],
            "400",
            400,
            Finished,
        ),
        Scenario {
            method: Method::POST,
            body: r#"{"item":7}"#,
            ..get(
                "/orders",
                "500 (the order may have been placed), then 200",
                vec![Reply::status(500), ok()],
                "500",
                500,
                NotIdempotent,
            )
        },
        Scenario {
            method: Method::POST,
            headers: &[("idempotency-key", "pay-7f3a")],
            body: r#"{"amount":100}"#,
            ..get(
                "/payments",
                "503, then 201; the request carries an Idempotency-Key",
                vec![Reply::status(503), Reply::status(201)],
                "503 (backoff), 201",
                201,
                Finished,
            )
        },
        get(
            "/down",
            "503 every time",
            vec![Reply::status(503)],
            "503 (backoff), 503 (backoff), 503 (backoff), 503",
            503,
            AttemptsExhausted,
        ),
        get("/hello", "200", vec![ok()], "200", 200, Finished),
        get(
            "/missing",
            "404",
            vec![Reply::status(404)],
            "404",
            404,
            Finished,
        ),
        Scenario {
            settings: Some(CallSettings::new().no_retries()),
            ..get(
                "/dashboard",
                "503, then 200; this call asks for no retries (CallSettings)",
                vec![Reply::status(503), ok()],
                "503",
                503,
                AttemptsExhausted,
            )
        },
        Scenario {
            method: Method::POST,
            body: r#"{"report":"q3"}"#,
            checked: true,
            ..get(
                "/jobs",
                "creates the job, then resets the connection; GET /jobs/found finds it",
                vec![Reply::Reset, Reply::status(201)],
                "reset (backoff)",
                200,
                CheckAnswered,
            )
        },
        Scenario {
            method: Method::PUT,
            body: r#"{"name":"Ada"}"#,
            ..get(
                "/profile",
                "502, then 200",
                vec![Reply::status(502), ok()],
                "502 (backoff), 200",
                200,
                Finished,
            )
        },
        // Last: a server's Retry-After holds every request to it (the throttle), so the hour it asks
        // for would hold the scenarios after it too.
        Scenario {
            retry_after: Some(Duration::from_secs(3600)),
            ..get(
                "/maintenance",
                "503 with Retry-After: 3600, then 200",
                vec![Reply::status(503).header("retry-after", 3600), ok()],
                "503",
                503,
                RetryAfterTooLong,
            )
        },
    ]
}

#[tokio::main]
async fn main() -> ExitCode {
    let started = Instant::now();
    let scenarios = scenarios();
    let lookups = [(
        "/jobs/found",
        vec![Reply::status(200).body(r#"{"id":"job-1"}"#)],
    )];
    let scripts = scenarios.iter().map(|s| (s.path, s.script.clone()));
    let server = Server::start(scripts.chain(lookups)).await;

    // Small numbers so the tour runs in seconds; production values are in the crate documentation.
    let policy = RetryPolicy::new()
        .max_attempts(4)
        // 50 ms, 100 ms, 200 ms, ... before jitter, never more than 1 s.
        .backoff(Backoff::exponential(ms(50)).max_delay(Duration::from_secs(1)))
        // A Retry-After up to 5 s is honoured; a longer one is handed back to the caller.
        .max_retry_after(Duration::from_secs(5))
        // Only the response head is timed: a slow download of a body is not an error.
        .attempt_timeout(ms(300))
        // The whole call, waits included, never takes longer than this.
        .deadline(Duration::from_secs(5))
        // A tour sends one request at a time, nearly every one failing: a budget sized for a fleet
        // (10% of requests, `cargo run --example storm`) would refuse most of its retries.
        .retry_budget(RetryBudget::builder().floor(100).build());
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    // The same policy with a check: a create that may have run is looked up before it is re-sent.
    let looked_up = ServiceBuilder::new()
        .layer(RetryLayer::new(policy.clone()).check_before_retry(LookUpJob))
        .service(client.clone());
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(client);

    let mut failures = Vec::new();
    let (mut attempts, mut successes, mut lookups_sent) = (0, 0, 0);
    for s in &scenarios {
        let mut request = Request::builder()
            .method(s.method.clone())
            .uri(server.url(s.path));
        for (name, value) in s.headers {
            request = request.header(*name, *value);
        }
        let mut request = request
            .body(Full::new(Bytes::from_static(s.body.as_bytes())))
            .expect("a valid request");
        if let Some(settings) = &s.settings {
            request.extensions_mut().insert(settings.clone());
        }

        println!("{} {} — scripted: {}", s.method, s.path, s.story);
        let result = match s.checked {
            true => looked_up.clone().oneshot(request).await,
            false => client.clone().oneshot(request).await,
        };

        let (status, history) = match &result {
            Ok(response) => (
                Some(response.status()),
                response.extensions().get::<RetryHistory>().cloned(),
            ),
            Err(error) => (None, Some(error.history().clone())),
        };
        // No history means the first attempt's response needed no decision: one attempt.
        let (tried, actual_trail, stop, retry_after) = match &history {
            Some(h) => {
                println!("    attempts: {}", trail(h, true));
                (
                    h.attempt_count(),
                    trail(h, false),
                    h.stop_reason(),
                    h.retry_after(),
                )
            }
            None => {
                let code = status.map_or(0, |s| s.as_u16());
                println!("    attempts: {code} (first attempt, nothing to retry)");
                (1, code.to_string(), StopReason::Finished, None)
            }
        };
        match result {
            Ok(response) => {
                let plural = if tried == 1 { "" } else { "s" };
                let status = response.status();
                println!("    outcome:  {status} after {tried} attempt{plural} ({stop})");
                // Read the body to its end so the connection goes back to the pool.
                let _ = response.into_body().collect().await;
            }
            Err(error) => {
                println!("    outcome:  error: {error}");
                if let Some(inner) = error.inner() {
                    println!("    cause:    {inner}");
                }
            }
        }
        if let Some(delay) = retry_after {
            println!("    the server asks to come back in {delay:?}");
        }
        for check in history.iter().flat_map(|h| h.checks()) {
            println!(
                "    checked:  after attempt {}, {} lookup(s): {:?}, answered {:?}",
                check.after_attempt,
                check.requests.len(),
                check.requests,
                check.answer
            );
            lookups_sent += check.requests.len();
        }
        println!();

        attempts += tried;
        successes += u32::from(status.is_some_and(|s| s.is_success()));

        // What the crate promises for this request; each difference is reported at the end.
        let mut check = |ok: bool, what: String| {
            if !ok {
                failures.push(format!("{} {}: {what}", s.method, s.path));
            }
        };
        let code = status.map(|s| s.as_u16());
        check(
            code == Some(s.status),
            format!("ended in {code:?}, expected {}", s.status),
        );
        check(
            actual_trail == s.trail,
            format!("attempts were `{actual_trail}`, expected `{}`", s.trail),
        );
        check(
            stop == s.stop,
            format!("stopped: {stop}, expected: {}", s.stop),
        );
        check(
            retry_after == s.retry_after,
            format!("Retry-After {retry_after:?}, expected {:?}", s.retry_after),
        );
        let hits = server.hits(s.path);
        check(
            hits == tried as usize,
            format!("the server saw {hits} requests for {tried} attempts"),
        );
        // A retry sends the same body again.
        let mut resent = server.received().into_iter().filter(|r| r.path == s.path);
        check(
            resent.all(|r| r.body == s.body.as_bytes()),
            format!("a retry sent a different body than `{}`", s.body),
        );
    }

    let received = server.received().len();
    println!(
        "{} requests, {attempts} attempts, {successes} succeeded (2xx)",
        scenarios.len()
    );
    println!(
        "server: {received} requests received over {} connections",
        server.connections()
    );
    if received != attempts as usize + lookups_sent {
        failures.push(format!(
            "the server received {received} requests for {attempts} attempts and {lookups_sent} lookups"
        ));
    }
    if server.hits("/jobs/found") != 1 {
        failures.push("the lookup before re-sending the create was not made".to_owned());
    }
    println!("elapsed: {:.2?}", started.elapsed());

    if failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!("\n{} unexpected outcome(s):", failures.len());
    for failure in &failures {
        eprintln!("  {failure}");
    }
    ExitCode::FAILURE
}

/// The attempts as `503 (backoff 23 ms), 200`; with `timed` false the durations are left out.
fn trail(history: &RetryHistory, timed: bool) -> String {
    let attempts = history.attempts().iter().map(|attempt| {
        let mut text = match attempt.outcome {
            AttemptOutcome::Status(status) => status.as_u16().to_string(),
            AttemptOutcome::Error(kind) => kind.to_string(),
            AttemptOutcome::Interrupted => "interrupted".to_owned(),
            other => format!("{other:?}"),
        };
        if let Some(wait) = attempt.wait {
            let reason = match wait.reason {
                WaitReason::Backoff => "backoff",
                WaitReason::RetryAfter => "retry-after",
                _ => "other",
            };
            text += &if timed {
                format!(" ({reason} {} ms)", wait.duration.as_millis())
            } else {
                format!(" ({reason})")
            };
        }
        text
    });
    attempts.collect::<Vec<_>>().join(", ")
}

/// Before re-sending a create that may have run, `GET {path}/found`: 200 is the job (returned instead of
/// creating another), 404 means nothing was created (send again), anything else stops.
#[derive(Clone, Copy)]
struct LookUpJob;

impl<S> CheckBeforeRetry<S, Full<Bytes>, Incoming> for LookUpJob
where
    S: Service<Request<Full<Bytes>>, Response = Response<Incoming>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
{
    type Future = Pin<Box<dyn Future<Output = CheckVerdict<Incoming>> + Send>>;

    fn check(&self, service: S, request: CheckRequest<'_, Full<Bytes>>) -> Self::Future {
        let url = format!("{}/found", request.head.uri);
        Box::pin(async move {
            let lookup = Request::get(url)
                .body(Full::default())
                .expect("a valid request");
            match service.oneshot(lookup).await {
                Ok(found) if found.status() == 200 => CheckVerdict::Respond(found),
                Ok(missing) if missing.status() == 404 => CheckVerdict::Retry,
                _ => CheckVerdict::Stop,
            }
        })
    }
}
