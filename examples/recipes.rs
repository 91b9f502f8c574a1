//! Recipes: the retry guidance of real APIs, each written as a few lines of configuration.
//!
//! | the guidance says | recipe |
//! |---|---|
//! | retry 429 only; wait exactly `Retry-After`, else 1 s, 2 s, 4 s; 3 retries; 30 s per request | [`rate_limit_only`] |
//! | retry 429, 409 in flight, 5xx, network errors; `Retry-After` as a floor; full jitter, capped; timeouts and a deadline; the same `X-Idempotency-Key` on every retry | [`checklist`] |
//! | exponent 1.5 from 500 ms, at most 60 s between tries and 1 h in all; 408, 429, 5xx, connection errors | [`one_hour_backoff`] |
//! | 5xx and network errors, full jitter 1 s to 30 s, 5 retries, 2 min; 429 a single separate pause; 4xx never; creates keyed | [`server_errors_with_429_pause`] |
//! | memory API: 429 as the SDK does; `ingest()` safe to retry within a rolling 60 s window | [`memory_ingest`] |
//! | memory API: the timeout covers the full request lifecycle, body included | [`memory_client`] |
//! | transcriptions: a key in the JSON body; before re-sending a create, look for its job | [`transcriptions`] |
//! | deliveries retried 1 min, 5 min, 30 min, 2 h, 12 h after a failure | [`webhook_schedule`] |
//! | streamed responses: retry only while the caller has not seen a byte | [`streaming`] |
//! | the real error in a 200's JSON body: retry `overloaded`; a body that is not JSON fails at once | [`json_errors`] |
//!
//! `cargo run --example recipes` prints each recipe and runs it once against an embedded scripted
//! server on 127.0.0.1 (a few seconds in all); it exits 1 if a recipe behaves differently from what
//! it promises. `tests/recipes.rs` compiles this same file and checks every promise with exact waits
//! under tokio's paused clock.

pub use retry_test_support::jobs;
use retry_test_support::{checks, server};

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use checks::Checks;
use http::{HeaderName, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use server::{Reply, Server};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::body::{CallTimedOut, FirstByte, FirstByteLayer};
use tower_http_retry::check::{CheckBeforeRetry, CheckRequest, CheckVerdict};
use tower_http_retry::classify::{default_decision, every_server_error, Decision, RetryClass};
use tower_http_retry::retry_after::RetryAfterMode;
use tower_http_retry::{
    BoxError, CallSettings, CallTimeout, CallTimeoutLayer, Retry, RetryHistory, RetryLayer,
    RetryPolicy,
};

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

/// Retry 429 alone, 3 times: wait exactly the `Retry-After` when the server gives one, else 1 s, 2 s,
/// 4 s; give each request 30 s. (An SDK that "retries rate-limited requests automatically; everything
/// else is up to you".)
///
/// - When the retries run out, the 429 is returned and `RetryHistory::retry_after()` carries the
///   server's last `Retry-After`, for a "try again in N s" message.
/// - A `Retry-After` above 60 s (`max_retry_after`) is not slept on: the 429 is returned at once,
///   carrying it.
/// - The 30 s bound covers each attempt's response head; a timeout, a 5xx or a connection error is
///   returned to the caller, never retried.
pub fn rate_limit_only() -> RetryPolicy {
    RetryPolicy::default()
        .retry_only_statuses([429]) // 5xx, timeouts, network errors: the caller's
        .max_attempts(4)
        .backoff(Backoff::exponential(secs(1)).jitter(Jitter::None))
        .retry_after_mode(RetryAfterMode::Exact)
        .attempt_timeout(secs(30))
}

/// Retry 429, 409 in flight, 5xx and network errors and timeouts, never other 4xx; `Retry-After` as a
/// floor; full jitter from 200 ms, at most 20 s a delay, 5 attempts; 10 s per attempt and 60 s in
/// all; the same `X-Idempotency-Key` on every retry of a mutation, and a replayed answer recognised.
///
/// - POST and PATCH get a key before their first attempt, so a mutation is retried after a reset or
///   a 5xx like a GET; the key is never changed. `RetryHistory::idempotency_key()` returns it.
/// - `409` (the first request with that key is still running) waits at least its `Retry-After`.
/// - `X-Idempotency-Replayed: true` on the answer sets `RetryHistory::is_replayed()`.
/// - The timeouts are examples: tune them to the endpoint.
pub fn checklist() -> RetryPolicy {
    RetryPolicy::default()
        .classify_with(every_server_error) // every 5xx; 429, 409 in flight, network: the default table
        .backoff(
            Backoff::exponential(ms(200))
                .max_delay(secs(20))
                .jitter(Jitter::Full),
        )
        .max_attempts(5)
        .attempt_timeout(secs(10))
        .deadline(secs(60))
        .idempotency_header(HeaderName::from_static("x-idempotency-key"))
        .inject_idempotency_keys()
}

/// Exponential backoff with exponent 1.5 from 500 ms, at most 60 s between tries and 1 h in all;
/// 408, 429, 5xx and connection errors retried; 400, 401, 402, 403, 404, 413, 415 not.
///
/// - "Always cap the number of attempts and the total elapsed time": the hour, and 150 attempts. Once
///   the delays reach their cap each wait is at least 30 s, so the hour holds at most about 130
///   attempts and ends the call first; the attempt cap is the bound that holds whatever the clock does.
///
/// - Each delay is spread by equal jitter (between half and all of it), as the same guidance's
///   hand-written loop does: never a herd, never a hurried retry.
/// - The retry budget stays on. A lone request never meets it: its floor is 10 retries per 10 s, and
///   this backoff makes at most 8 in any 11 s. When many requests fail at once it keeps their retries
///   to about 10% of the traffic, instead of an hour of hammering from each.
pub fn one_hour_backoff() -> RetryPolicy {
    RetryPolicy::default()
        .classify_with(every_server_error) // every 5xx; 408, 429 and connection errors by default
        .backoff(
            Backoff::exponential(ms(500))
                .multiplier(1.5)
                .max_delay(secs(60))
                .jitter(Jitter::Equal),
        )
        .max_attempts(150)
        .deadline(minutes(60))
}

/// Retry 5xx and network errors with full jitter, 1 s doubling to 30 s, 5 retries, 2 minutes in all;
/// answer a 429 with one separate pause (its `Retry-After`, at least 1 s) outside that loop; never
/// retry another 4xx.
///
/// - A 429 neither spends nor advances the five exponential retries; a second 429 is returned.
/// - A create (POST) is retried only when it never reached the server (connection refused, 429): after
///   a timeout, a reset or a 5xx the job may exist, and this API does not deduplicate. [`transcriptions`]
///   checks for the job before re-sending; once the server deduplicates by `Idempotency-Key` ("on our
///   roadmap"), `.inject_idempotency_keys()` makes every create safe to re-send as it is.
pub fn server_errors_with_429_pause() -> RetryPolicy {
    RetryPolicy::default()
        .classify_with(every_server_error) // every 5xx; network errors by the default table
        .never_retry_statuses([408, 409]) // 4xx never, 429 aside
        .transient_retries(5, Backoff::exponential(secs(1)).max_delay(secs(30)))
        .throttling_pauses(1, Backoff::constant(secs(1)).jitter(Jitter::None))
        .deadline(minutes(2))
}

/// The transcription API's creates, deduplicated on the client as its guidance says: each create
/// carries a UUID in its JSON body (`metadata.idempotency_key`, see [`create_transcription`]), and
/// "before retrying a timed-out request, GET /v1/transcriptions and skip the retry if you see a row
/// with the same key". The retry loop is [`server_errors_with_429_pause`], with 30 s per attempt.
///
/// - After a timeout, a reset or a 5xx on a create, [`JobLookup`] lists the latest 20 jobs, through
///   the same stack; when one carries the create's key, the call returns that job (`GET
///   /v1/transcriptions/{id}`) instead of creating another; when none does, the create is sent again.
/// - When the lookup itself fails, or the body has no key, the create is not re-sent: the last
///   outcome is returned. The lookup is bounded by the 2 minute deadline; its requests are in
///   `RetryHistory::checks`, not counted as attempts.
/// - What it does not guarantee: a job created after the lookup (a first attempt still running on
///   the server after the client gave up on it) can still be duplicated by the re-sent create, and a
///   job beyond the latest 20 is not seen.
pub fn transcriptions<S>(service: S) -> Retry<S, JobLookup> {
    ServiceBuilder::new()
        .layer(
            RetryLayer::new(server_errors_with_429_pause().attempt_timeout(secs(30)))
                .check_before_retry(JobLookup),
        )
        .service(service)
}

/// A create for [`transcriptions`]: the source `url`, and a fresh UUID as its key, in the JSON body.
pub fn create_transcription(base: &str, url: &str) -> Request<Full<Bytes>> {
    let key = uuid::Uuid::new_v4();
    let body =
        serde_json::json!({ "url": url, "metadata": { "idempotency_key": key.to_string() } });
    Request::post(format!("{base}/v1/transcriptions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// The check of [`transcriptions`]: is there a job with this create's key among the latest 20?
#[derive(Clone, Copy, Debug, Default)]
pub struct JobLookup;

impl<S, ResB> CheckBeforeRetry<S, Full<Bytes>, ResB> for JobLookup
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ResB: Body + Send + 'static,
    ResB::Data: Send,
    ResB::Error: Into<BoxError>,
{
    type Future = Pin<Box<dyn Future<Output = CheckVerdict<ResB>> + Send>>;

    fn check(&self, service: S, request: CheckRequest<'_, Full<Bytes>>) -> Self::Future {
        let jobs = request.head.uri.clone(); // .../v1/transcriptions
        let body = request.body;
        Box::pin(async move {
            let Some(key) = key_in(body).await else {
                return CheckVerdict::Stop; // nothing to look for: never risk a duplicate
            };
            let Ok(list) = fetch(service.clone(), format!("{jobs}?limit=20")).await else {
                return CheckVerdict::Stop;
            };
            let Some(rows) = collect_json(list).await else {
                return CheckVerdict::Stop;
            };
            let found = rows["data"].as_array().and_then(|rows| {
                rows.iter()
                    .find(|row| row["metadata"]["idempotency_key"] == key.as_str())
            });
            match found.and_then(|row| row["id"].as_str()) {
                None => CheckVerdict::Retry,
                Some(id) => match fetch(service, format!("{jobs}/{id}")).await {
                    Ok(job) => CheckVerdict::Respond(job),
                    Err(()) => CheckVerdict::Stop,
                },
            }
        })
    }
}

/// The `metadata.idempotency_key` of a create's JSON body.
async fn key_in(body: Option<Full<Bytes>>) -> Option<String> {
    let bytes = body?.collect().await.ok()?.to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    json["metadata"]["idempotency_key"]
        .as_str()
        .map(String::from)
}

/// A GET through `service`; a 2xx response, or `Err`.
async fn fetch<S, ResB>(service: S, url: String) -> Result<Response<ResB>, ()>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResB>>,
{
    let request = Request::get(url).body(Full::default()).map_err(|_| ())?;
    match service.oneshot(request).await {
        Ok(response) if response.status().is_success() => Ok(response),
        _ => Err(()),
    }
}

async fn collect_json<B: Body>(response: Response<B>) -> Option<serde_json::Value> {
    let bytes = response.into_body().collect().await.ok()?.to_bytes();
    serde_json::from_slice(&bytes).ok()
}

/// How long the memory API collapses a repeated `ingest()` into the first one.
pub const INGEST_WINDOW: Duration = Duration::from_secs(60);

/// The memory API's `ingest()`: 429 retried as its SDK does (exactly `Retry-After`, else 1 s, 2 s, 4 s;
/// 3 retries; 30 s per request); a 5xx, timeout or reset, after which the event may have been stored,
/// retried only while the retry leaves within the 60 s window in which the server collapses a
/// repeated ingest into the first ("`ingest()` is safe to retry within a rolling 60-second window").
///
/// - The window is measured from the first attempt (`RequestInfo::elapsed`), and the retry must
///   leave inside it: the elapsed time plus the longest delay (4 s) is at most 60 s. A first attempt
///   that times out at 30 s is retried at 31 s; that one timing out at 61 s is returned.
/// - Outside the window, the event may be stored twice: the caller keeps its own log of submitted
///   hashes, as the guidance says. Inside it, dedup is the server's "best effort": not a guarantee.
/// - `search()` and `status()` are read-only: the default table retries them anyway.
pub fn memory_ingest() -> RetryPolicy {
    const LONGEST_DELAY: Duration = Duration::from_secs(4);
    RetryPolicy::default()
        .classify_with(|request, outcome| {
            let may_have_stored = default_decision(request, outcome) == Decision::Unsafe;
            let retry_in_window = request.elapsed() + LONGEST_DELAY <= INGEST_WINDOW;
            (may_have_stored && retry_in_window).then_some(Decision::Retry(RetryClass::Transient))
        })
        .max_attempts(4)
        .backoff(
            Backoff::exponential(secs(1))
                .max_delay(LONGEST_DELAY)
                .jitter(Jitter::None),
        )
        .retry_after_mode(RetryAfterMode::Exact)
        .attempt_timeout(secs(30))
}

/// The memory API's client: [`memory_ingest`] inside one timeout that "covers the full request
/// lifecycle": every attempt, every wait and the reading of the response body (the SDK's default is
/// 30 s; "if a single call can take longer, raise it").
///
/// - Past the timeout, the call fails with the retry layer's deadline error, or, once the response
///   has been handed over, reading its body fails with `CallTimedOut`.
/// - A request's own `CallSettings::deadline` can shorten it for that call, never lengthen it.
pub fn memory_client<S>(service: S, timeout: Duration) -> CallTimeout<Retry<S>> {
    ServiceBuilder::new()
        .layer(CallTimeoutLayer::new(timeout)) // the body included
        .layer(RetryLayer::new(memory_ingest()))
        .service(service)
}

/// Deliver, and after a failure retry 1 min, 5 min, 30 min, 2 h and 12 h later: anything but a 2xx
/// (any status, any error, no answer within 30 s) is a failure.
///
/// - Receivers deduplicate deliveries (by event id), so a delivery is retried even when it may have
///   arrived.
/// - No retry budget: the schedule already spaces retries minutes apart, and every delivery is promised
///   its five retries, however many receivers are down.
/// - A receiver's `Retry-After` is a floor, up to the schedule's longest delay.
/// - The call lives in memory for up to 14 h 36 min: a sender that must survive restarts keeps its
///   queue elsewhere.
pub fn webhook_schedule() -> RetryPolicy {
    RetryPolicy::default()
        .classify_with(|_, outcome| match outcome.status() {
            Some(status) if status.is_success() => Some(Decision::Done),
            _ => Some(Decision::Retry(RetryClass::Transient)),
        })
        .backoff(Backoff::schedule([
            minutes(1),
            minutes(5),
            minutes(30),
            minutes(120),
            minutes(720),
        ]))
        .max_attempts(6) // the delivery and 5 retries
        .attempt_timeout(secs(30))
        .max_retry_after(minutes(720))
        .no_retry_budget()
}

/// A streaming client (speech, server-sent events, downloads): a response is retried only while no
/// byte of its body has reached the caller. After that, a broken stream is the caller's error.
///
/// `FirstByteLayer` sits inside the retry and holds each 2xx response until its first body frame; the
/// per-attempt timeout then bounds the time to that first byte.
pub fn streaming<S>(service: S) -> Retry<FirstByte<S>> {
    ServiceBuilder::new()
        .layer(RetryLayer::new(
            RetryPolicy::default().attempt_timeout(secs(10)),
        ))
        .layer(FirstByteLayer::new())
        .service(service)
}

/// An API that answers 200 (or 400) with the real error in a JSON body, `{"error": "overloaded"}`;
/// and whose guidance says that a body that is not JSON ("almost always a bug or a proxy injecting
/// HTML") must fail the operation, never loop.
///
/// - Each response body, up to 64 KiB, is read within its attempt, so the classifier can read it.
/// - `{"error": "overloaded"}` is retried as throttling, whatever the status.
/// - A body that is not JSON ends the call at once with that response, whatever its status (a 502
///   page from a proxy included).
/// - An empty body, and any other JSON, is left to the default table.
/// - A body that breaks while it is read is retried for a GET (or a keyed request), like a reset; a
///   body longer than 64 KiB is passed on as it streams, judged by its head alone.
pub fn json_errors() -> RetryPolicy {
    RetryPolicy::default()
        .buffer_responses(64 * 1024)
        .classify_with(|_, outcome| {
            let body = outcome.body().filter(|body| !body.is_empty())?;
            match serde_json::from_slice::<serde_json::Value>(body) {
                Err(_) => Some(Decision::Done), // not JSON: never retried
                Ok(json) if json["error"] == "overloaded" => {
                    Some(Decision::Retry(RetryClass::Throttling))
                }
                Ok(_) => None,
            }
        })
}

// ---- `cargo run --example recipes`: each recipe once against a scripted server ----

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn request(method: Method, url: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(url)
        .body(Full::default())
        .unwrap()
}

/// Sends one request through `policy` and reports the history; `None` when the call failed.
async fn run(
    policy: RetryPolicy,
    client: &HttpClient,
    request: Request<Full<Bytes>>,
) -> Option<(StatusCode, RetryHistory)> {
    let line = format!("{} {}", request.method(), request.uri().path());
    match RetryLayer::new(policy)
        .layer(client.clone())
        .oneshot(request)
        .await
    {
        Ok(response) => {
            let history = response.extensions().get::<RetryHistory>().cloned();
            let history = history.unwrap_or_default();
            match history.attempt_count() {
                0 => println!("    {line}: answered at once -> {}", response.status()),
                _ => println!("    {line}: {history} -> {}", response.status()),
            }
            Some((response.status(), history))
        }
        Err(error) => {
            println!("    {line}: {} -> {error}", error.history());
            None
        }
    }
}

fn waits(history: &RetryHistory) -> Vec<Duration> {
    let waits = history.attempts().iter().filter_map(|a| a.wait);
    waits.map(|w| w.duration).collect()
}

#[tokio::main]
async fn main() -> ExitCode {
    let server = Server::start([
        (
            "/v1/search",
            vec![
                Reply::status(429),
                Reply::status(429).header("retry-after", 1),
                Reply::status(200),
            ],
        ),
        (
            "/v1/orders",
            vec![
                Reply::status(503),
                Reply::status(200).header("x-idempotency-replayed", "true"),
            ],
        ),
        ("/v1/speech", vec![Reply::status(502), Reply::status(200)]),
        (
            "/v1/transcriptions",
            vec![Reply::status(429), Reply::status(502), Reply::status(200)],
        ),
        ("/hooks/order-paid", vec![Reply::status(204)]),
        (
            "/v1/memories",
            vec![Reply::BodyStalls {
                status: 200,
                prefix: Bytes::from_static(b"[{"),
            }],
        ),
        (
            "/v1/complete",
            vec![
                Reply::status(200).body(r#"{"error": "overloaded"}"#),
                Reply::status(200).body(r#"{"id": 7}"#),
            ],
        ),
        (
            "/v1/proxied",
            vec![Reply::status(502).body("<html>Bad Gateway</html>")],
        ),
        (
            "/v1/stream",
            vec![
                Reply::BodyFails {
                    status: 200,
                    prefix: Bytes::new(),
                },
                Reply::status(200).body("audio"),
            ],
        ),
    ])
    .await;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut checks = Checks::default();

    println!(
        "rate_limit_only: 429 alone, exactly Retry-After or 1 s, 2 s, 4 s; 3 retries; 30 s each"
    );
    let outcome = run(
        rate_limit_only(),
        &client,
        request(Method::GET, &server.url("/v1/search")),
    )
    .await;
    checks.expect(
        outcome.is_some_and(|(status, h)| status == 200 && waits(&h) == [secs(1), secs(1)]),
        "waited 1 s by the backoff, then exactly the 1 s the second 429 asked for (not 2 s)",
    );

    println!("checklist: 429, 409, 5xx, network; Retry-After floor; full jitter; the same key");
    let outcome = run(
        checklist(),
        &client,
        request(Method::POST, &server.url("/v1/orders")),
    )
    .await;
    let keys: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.path == "/v1/orders")
        .filter_map(|r| r.headers.get("x-idempotency-key").cloned())
        .collect();
    checks.expect(
        outcome.is_some_and(|(status, h)| status == 200 && h.is_replayed()),
        "the POST was retried after a 503 and the replayed answer recognised",
    );
    checks.expect(
        keys.len() == 2 && keys[0] == keys[1],
        "both attempts carried the same X-Idempotency-Key",
    );

    println!("one_hour_backoff: exponent 1.5 from 500 ms, 60 s apart at most, 1 h in all");
    let outcome = run(
        one_hour_backoff(),
        &client,
        request(Method::GET, &server.url("/v1/speech")),
    )
    .await;
    checks.expect(
        outcome.is_some_and(|(status, h)| {
            status == 200 && waits(&h).iter().all(|w| *w >= ms(250) && *w <= ms(500))
        }),
        "the 502 was retried after 250 to 500 ms",
    );

    println!("server_errors_with_429_pause: 5xx loop with full jitter; 429 one pause of 1 s");
    let outcome = run(
        server_errors_with_429_pause(),
        &client,
        request(Method::GET, &server.url("/v1/transcriptions")),
    )
    .await;
    checks.expect(
        outcome.is_some_and(|(status, h)| {
            let waits = waits(&h);
            status == 200 && waits.len() == 2 && waits[0] == secs(1) && waits[1] <= secs(1)
        }),
        "the 429 paused 1 s, the 502 then waited the first exponential delay (at most 1 s)",
    );

    println!(
        "transcriptions: a create that timed out after the job was made is looked up, not re-sent"
    );
    let api = jobs::JobsApi::new([jobs::Create::AcceptThenHang]);
    let base = format!("http://{}", api.serve().await);
    let mut create = create_transcription(&base, "https://files.test/a.wav");
    // Short waits for a demonstration; the recipe's own are 30 s per attempt and 1 s and more between.
    let quick = CallSettings::new()
        .attempt_timeout(ms(200))
        .backoff(Backoff::constant(ms(10)).jitter(Jitter::None));
    create.extensions_mut().insert(quick);
    let response = transcriptions(client.clone()).oneshot(create).await;
    let status = response.as_ref().map(|r| r.status()).ok();
    println!(
        "    POST /v1/transcriptions: {status:?}, jobs on the server: {}",
        api.jobs().len()
    );
    checks.expect(
        status == Some(StatusCode::OK) && api.jobs().len() == 1,
        "the job the timed-out create made was returned, and no second one was created",
    );

    println!("memory_client: the timeout covers the response body too");
    let response = memory_client(client.clone(), ms(300))
        .oneshot(request(Method::GET, &server.url("/v1/memories")))
        .await;
    let body = match response {
        Ok(response) => response.into_body().collect().await.err(),
        Err(_) => None,
    };
    println!("    GET /v1/memories: body read ended with {body:?}");
    checks.expect(
        body.is_some_and(|e| e.is::<CallTimedOut>()),
        "a body still streaming at the timeout failed with CallTimedOut",
    );

    println!("webhook_schedule: 1 min, 5 min, 30 min, 2 h, 12 h");
    let outcome = run(
        webhook_schedule(),
        &client,
        request(Method::POST, &server.url("/hooks/order-paid")),
    )
    .await;
    checks.expect(
        outcome.is_some_and(|(status, _)| status == 204),
        "delivered on the first attempt (tests/recipes.rs runs the whole schedule on a paused clock)",
    );

    println!("streaming: retried only while the caller has seen no byte");
    let response = streaming(client.clone())
        .oneshot(request(Method::GET, &server.url("/v1/stream")))
        .await;
    let resent = response
        .as_ref()
        .map_or(0, |r| RetryHistory::resend_count(r.extensions()));
    let body = match response {
        Ok(response) => response.into_body().collect().await.ok(),
        Err(_) => None,
    };
    let body = body.map(|b| b.to_bytes());
    println!("    GET /v1/stream: {resent} resend, body {body:?}");
    checks.expect(
        resent == 1 && body.is_some_and(|b| b == "audio"),
        "the stream that broke before its first byte was retried",
    );

    println!("json_errors: retry a JSON overloaded error; a body that is not JSON fails at once");
    let outcome = run(
        json_errors(),
        &client,
        request(Method::GET, &server.url("/v1/complete")),
    )
    .await;
    checks.expect(
        outcome.is_some_and(|(status, h)| status == 200 && h.attempt_count() == 2),
        "the 200 carrying {\"error\": \"overloaded\"} was retried",
    );
    let outcome = run(
        json_errors(),
        &client,
        request(Method::GET, &server.url("/v1/proxied")),
    )
    .await;
    checks.expect(
        outcome.is_some_and(|(status, h)| status == 502 && h.attempt_count() == 0)
            && server.hits("/v1/proxied") == 1,
        "the 502 whose body is HTML was returned at once, not retried",
    );

    if checks.0.is_empty() {
        println!("\nevery recipe behaved as described");
        ExitCode::SUCCESS
    } else {
        eprintln!("\nrecipes that misbehaved: {:?}", checks.0);
        ExitCode::FAILURE
    }
}
