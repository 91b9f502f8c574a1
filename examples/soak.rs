//! A soak run: many POSTs with idempotency keys and streamed bodies through one retry layer against a
//! local server that injects faults into a share of attempts and refuses a share of connections, then
//! the ledger. The bodies are one-shot streams made replayable by `ReplayBodyLayer`.
//!
//! ```sh
//! cargo run --release --example soak            # 200,000 requests
//! cargo run --release --example soak -- 20000   # fewer
//! ```
//!
//! It prints requests, attempts, successes, errors by kind, and the three figures that must be zero:
//! lost requests (no response and no error), side effects executed twice, and attempts whose body
//! reached the server different from what was sent. It exits 1 if any of those is not zero.

use retry_test_support::{faults, upload};

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use faults::{digest, Fault, FaultServer, RefusingConnector, Schedule, REQUEST_ID};
use http::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinSet;
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::Backoff;
use tower_http_retry::body::ReplayBodyLayer;
use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};
use upload::Upload;

const IN_FLIGHT: usize = 64;
const SEED: u64 = 0x50A6;

/// The body of request `id`: a few hundred bytes that differ from one request to the next.
fn payload(id: u64) -> Bytes {
    let size = 64 + (id % 7) as usize * 100;
    Bytes::from(
        (0..size)
            .map(|i| (id as usize + i * 31) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// A one-shot stream of `bytes` in chunks of 100 bytes.
fn streamed(bytes: Bytes) -> Upload {
    Upload::chunks(
        (0..bytes.len())
            .step_by(100)
            .map(|at| bytes.slice(at..(at + 100).min(bytes.len()))),
    )
}

/// How one request ended, from the client's side.
enum Ending {
    Response { status: u16, attempts: u32 },
    Error { kind: String, attempts: u32 },
}

#[tokio::main]
async fn main() -> ExitCode {
    let requests: u64 = match std::env::args().nth(1).map(|n| n.parse()) {
        None => 200_000,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("usage: soak [REQUESTS]");
            return ExitCode::FAILURE;
        }
    };
    let schedule = Schedule {
        seed: SEED,
        rate: 0.2,
        faults: Fault::ALL.to_vec(),
        slow: Duration::from_millis(150),
    };
    let server = FaultServer::start(
        schedule,
        Some(http::HeaderName::from_static("idempotency-key")),
    )
    .await;
    let connector = RefusingConnector::new(SEED, 0.05);
    let client = Client::builder(TokioExecutor::new()).build(connector);
    // A fifth of attempts fail, twice what the default retry budget funds: the soak is about what
    // the layer does with every retry it makes, so it makes them all.
    let policy = RetryPolicy::default()
        .no_retry_budget()
        .inject_idempotency_keys()
        .max_attempts(12)
        .attempt_timeout(Duration::from_millis(75))
        .backoff(
            Backoff::exponential(Duration::from_millis(2)).max_delay(Duration::from_millis(50)),
        );
    let service = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new())
        .layer(RetryLayer::new(policy))
        .service(client);

    let progress = ProgressBar::new(requests);
    progress.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    let started = Instant::now();
    // Finished tasks are reaped as new ones start, so memory follows the requests in flight, not the
    // requests made; a task that panicked counts as lost.
    let mut tasks = JoinSet::new();
    let mut endings = Vec::with_capacity(requests as usize);
    for id in 0..requests {
        while tasks.len() >= IN_FLIGHT {
            if let Some(Ok(ending)) = tasks.join_next().await {
                endings.push(ending);
            }
        }
        let service = service.clone();
        let url = server.url("/orders");
        let progress = progress.clone();
        tasks.spawn(async move {
            let request = Request::post(url)
                .header(REQUEST_ID, id)
                .body(streamed(payload(id)))
                .expect("a valid request");
            let ending = match service.oneshot(request).await {
                Ok(response) => Ending::Response {
                    status: response.status().as_u16(),
                    attempts: response
                        .extensions()
                        .get::<RetryHistory>()
                        .map_or(1, |h| h.attempt_count()),
                },
                Err(error) => Ending::Error {
                    kind: error
                        .kind()
                        .map_or_else(|| "deadline".to_owned(), |k| k.to_string()),
                    attempts: error.history().attempt_count(),
                },
            };
            progress.inc(1);
            ending
        });
    }

    while let Some(joined) = tasks.join_next().await {
        if let Ok(ending) = joined {
            endings.push(ending);
        }
    }
    progress.finish();
    eprintln!(
        "alive tasks {}",
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    );
    let elapsed = started.elapsed();

    let mut attempts = 0u64;
    let mut successes = 0u64;
    let mut failures: HashMap<String, u64> = HashMap::new();
    for ending in &endings {
        match ending {
            Ending::Response {
                status,
                attempts: n,
            } => {
                attempts += u64::from(*n);
                if (200..300).contains(status) {
                    successes += 1;
                } else {
                    *failures.entry(format!("status {status}")).or_default() += 1;
                }
            }
            Ending::Error { kind, attempts: n } => {
                attempts += u64::from(*n);
                *failures.entry(format!("error {kind}")).or_default() += 1;
            }
        }
    }
    let lost = requests - endings.len() as u64;
    let mut executions: HashMap<u64, u32> = HashMap::new();
    for execution in server.executions() {
        *executions.entry(execution.request_id).or_default() += 1;
    }
    let duplicated = executions.values().filter(|n| **n > 1).count();
    let seen = server.attempts();
    let mismatches = seen
        .iter()
        .filter(|a| a.body_digest != digest(&payload(a.request_id)))
        .count();

    println!("requests            {requests}");
    println!(
        "attempts            {attempts} ({:.3} per request)",
        attempts as f64 / requests.max(1) as f64
    );
    println!(
        "server saw          {} attempts, {} executions",
        seen.len(),
        executions.values().sum::<u32>()
    );
    println!("successes           {successes}");
    let mut failures: Vec<_> = failures.into_iter().collect();
    failures.sort();
    for (kind, n) in &failures {
        println!("ended with {kind:<9} {n}");
    }
    println!("lost                {lost}");
    println!("duplicated          {duplicated}");
    println!("body mismatches     {mismatches}");
    println!("peak memory         {}", peak_memory());
    println!(
        "elapsed             {elapsed:.1?} ({:.0} requests/s)",
        requests as f64 / elapsed.as_secs_f64()
    );

    if lost == 0 && duplicated == 0 && mismatches == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("FAILED: lost, duplicated and body mismatches must all be 0");
        ExitCode::FAILURE
    }
}

/// The resident set's high-water mark, from the kernel.
fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .map(|line| line.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown (no /proc/self/status)".to_owned())
}
