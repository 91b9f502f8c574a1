//! Fleet mode: 4 worker processes sharing one API through Redis, against 4 processes of their own.
//!
//! ```text
//! cargo run --example fleet --features redis
//! ```
//!
//! Starts its own `redis-server` on a free port of 127.0.0.1 (skipped when it is not installed) and
//! spawns itself as 4 workers per mode, twice:
//!
//! - one limiter at 10 r/s on 127.0.0.1 (nginx's `limit_req` without burst: a 429 with
//!   `Retry-After: 1`), 3x oversubscribed: each worker sends 60 requests at 7.5 r/s, throttled
//!   from the first request, with one schedule shared through Redis against throttles of their
//!   own (the two modes run at the same time, against a limiter each): the 429s the limiter sent
//!   over the requests, and when the last request completed over the ideal (N over the rate);
//! - an outage (every attempt 503): the fleet-wide retries against what the budget's ratio allows
//!   (10% of the fleet's requests, plus the floor of 10 once per budget).
//!
//! It checks what it shows and exits 1 when a check fails: every request of the shared fleet
//! completed, before no time the server gave, with fewer than half the 429s of the processes on
//! their own; the outage's retries at most 1.15 x what the ratio allows fleet-wide. The completion
//! time is printed, not checked (the README's "Fleets" reports it against the goal).

use retry_test_support::{checks, redis_server};

use retry_test_support::limiters;

/// Whether a call ended because the throttle shed it: what the limiters' `drive` counts apart (the
/// support crate cannot name this crate's `Error`).
fn is_shed(error: &retry_test_support::BoxError) -> bool {
    error
        .downcast_ref::<tower_http_retry::Error>()
        .is_some_and(tower_http_retry::Error::is_shed)
}

use std::convert::Infallible;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use checks::Checks;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use limiters::{drive, serve, Kind, Limited};
use tower::{service_fn, ServiceExt};
use tower_http_retry::budget::RetryBudget;
use tower_http_retry::store::Store;
use tower_http_retry::throttle::Throttle;
use tower_http_retry::{Retry, RetryPolicy};

const WORKERS: usize = 4;
const REQUESTS: u64 = 300;
const RATIO: f64 = 0.1;
const FLOOR: u32 = 10;
/// Per worker against the limiter: 4 x 7.5 r/s is 3 times its 10 r/s.
const PACED: usize = 60;
const PACED_RATE: f64 = 7.5;
/// No request outlives this: it bounds the run of processes that do not share.
const DEADLINE: Duration = Duration::from_secs(25);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("worker") => {
            worker(args.get(2).cloned());
            return ExitCode::SUCCESS;
        }
        Some("limited") => {
            limited(&args[2], &args[3], args.get(4).cloned());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let Some(server) = redis_server::RedisServer::start() else {
        return ExitCode::SUCCESS;
    };
    // The outage run: both modes at once, while the limiter run goes on (its workers mostly
    // sleep; they share nothing else).
    let modes = [("shared", Some(server.url())), ("independent", None)];
    let runs: Vec<Vec<Child>> = modes
        .iter()
        .map(|(_, url)| {
            (0..WORKERS)
                .map(|_| {
                    Command::new(&args[0])
                        .arg("worker")
                        .args(url)
                        .stdout(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect()
        })
        .collect();
    let (shared, independent) = limited_runs(&args[0], &server.url());
    println!("{WORKERS} workers x {REQUESTS} requests, every attempt 503, budget {RATIO} + floor {FLOOR}");
    println!(
        "{:<12} {:>9} {:>8} {:>12} {:>16}",
        "mode", "requests", "retries", "ratio used", "retries/allowed"
    );
    let mut lines = Vec::new();
    for ((mode, _), children) in modes.iter().zip(runs) {
        let (mut requests, mut retries) = (0u64, 0u64);
        for child in children {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let mut numbers = text.split_whitespace().map(|n| n.parse::<u64>().unwrap());
            requests += numbers.next().unwrap();
            retries += numbers.next().unwrap();
        }
        let fleet_allowed = RATIO * requests as f64 + f64::from(FLOOR);
        println!(
            "{mode:<12} {requests:>9} {retries:>8} {:>11.1}% {:>16.2}",
            100.0 * retries as f64 / requests as f64,
            retries as f64 / fleet_allowed
        );
        lines.push(retries as f64 / fleet_allowed);
    }
    println!(
        "fleet: outage retries {:.2} x the ratio fleet-wide shared vs {:.2} x independent",
        lines[0], lines[1]
    );
    let mut checks = Checks::default();
    println!("checks:");
    let n = WORKERS * PACED;
    checks.expect(
        shared.completed == n,
        &format!("shared: {} of {n} requests completed", shared.completed),
    );
    checks.expect(
        shared.early == 0,
        &format!("shared: {} attempts before the server's time", shared.early),
    );
    checks.expect(
        2.0 * shared.throttled < independent.throttled,
        &format!(
            "shared 429s {:.1}% under half the independent {:.1}%",
            100.0 * shared.throttled,
            100.0 * independent.throttled
        ),
    );
    checks.expect(
        lines[0] <= 1.15,
        &format!(
            "outage retries {:.2} x the ratio fleet-wide, at most 1.15",
            lines[0]
        ),
    );
    println!(
        "fleet: shared 429s {:.1}% vs independent {:.1}%, completion {:.2} x ideal",
        100.0 * shared.throttled,
        100.0 * independent.throttled,
        shared.completion
    );
    if checks.0.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("fleet: checks failed: {:?}", checks.0);
        ExitCode::FAILURE
    }
}

/// What the limiter saw of one mode's run.
struct Run {
    throttled: f64,
    completion: f64,
    completed: usize,
    early: usize,
}

/// The limiter run, both modes at once against a limiter each: what each limiter saw.
fn limited_runs(me: &str, url: &str) -> (Run, Run) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let n = WORKERS * PACED;
    let ideal = n as f64 / Kind::NGINX.rate();
    println!(
        "{WORKERS} workers x {PACED} requests at {PACED_RATE} r/s, one limiter at 10 r/s (429 + Retry-After: 1), ideal {ideal:.0} s"
    );
    // The workers start together, a little after they are spawned.
    let start = SystemTime::now() + Duration::from_millis(500);
    let start_ms = start
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let modes = [("shared", Some(url)), ("independent", None)];
    let runs: Vec<(Limited, Vec<Child>)> = modes
        .iter()
        .map(|(_, url)| {
            let limiter = Limited::new(Kind::NGINX);
            let (addr, _task) = runtime.block_on(serve(limiter.clone()));
            let children = (0..WORKERS)
                .map(|_| {
                    Command::new(me)
                        .args(["limited", &format!("http://{addr}/"), &start_ms])
                        .args(*url)
                        .stdout(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            (limiter, children)
        })
        .collect();
    println!(
        "{:<12} {:>9} {:>9} {:>6} {:>6} {:>11}",
        "mode", "requests", "completed", "429s", "early", "completion"
    );
    let mut results = Vec::new();
    for ((mode, _), (limiter, children)) in modes.iter().zip(runs) {
        let (mut completed, mut last) = (0usize, 0f64);
        for child in children {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let mut numbers = text.split_whitespace();
            completed += numbers.next().unwrap().parse::<usize>().unwrap();
            last = last.max(numbers.next().unwrap().parse::<f64>().unwrap());
        }
        let log = limiter.log();
        let throttled = log.iter().filter(|s| s.status == 429).count() as f64 / n as f64;
        let early = log.iter().filter(|s| s.early).count();
        let completion = last / ideal;
        println!(
            "{mode:<12} {n:>9} {completed:>9} {:>5.1}% {early:>6} {completion:>10.2}x",
            100.0 * throttled
        );
        results.push(Run {
            throttled,
            completion,
            completed,
            early,
        });
    }
    let independent = results.pop().expect("two modes");
    let shared = results.pop().expect("two modes");
    (shared, independent)
}

/// Sends `PACED` requests at `PACED_RATE` from `start` (ms since the epoch) to the limiter at
/// `uri`, throttled from the first request, on one schedule shared through the Redis at `url` when
/// given; prints the requests completed and when the last one completed, in seconds from `start`.
#[tokio::main(flavor = "current_thread")]
async fn limited(uri: &str, start: &str, url: Option<String>) {
    let store = url.map(|url| Store::redis(&url).unwrap());
    let throttle = match &store {
        Some(store) => Throttle::new().from_first_request().store(store),
        None => Throttle::new().from_first_request(),
    };
    let policy = RetryPolicy::default().deadline(DEADLINE).throttle(throttle);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let offsets: Vec<_> = (0..PACED)
        .map(|i| Duration::from_secs_f64(i as f64 / PACED_RATE))
        .collect();
    let start = UNIX_EPOCH + Duration::from_millis(start.parse().unwrap());
    if let Ok(wait) = start.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    let ended = drive(Retry::new(client, policy), uri, &offsets, is_shed).await;
    let done = ended.iter().filter(|e| e.ok);
    let last = done.clone().map(|e| e.finished).max().unwrap_or_default();
    println!("{} {}", done.count(), last.as_secs_f64());
}

/// Sends `REQUESTS` calls, 5 ms apart, to a server that answers 503 to everything; prints the
/// requests and the retries made.
#[tokio::main(flavor = "current_thread")]
async fn worker(url: Option<String>) {
    let attempts = Arc::new(AtomicU64::new(0));
    let counted = attempts.clone();
    let server = service_fn(move |_: Request<String>| {
        counted.fetch_add(1, Ordering::Relaxed);
        async {
            Ok::<_, Infallible>(
                Response::builder()
                    .status(StatusCode::SERVICE_UNAVAILABLE)
                    .body(String::new())
                    .unwrap(),
            )
        }
    });
    let mut builder = RetryBudget::builder().ratio(RATIO).floor(FLOOR);
    let store = url.map(|url| Store::redis(&url).unwrap());
    if let Some(store) = &store {
        builder = builder.store(store, "fleet-example");
    }
    let policy = RetryPolicy::default()
        .retry_budget(builder.build())
        .no_throttle();
    let client = Retry::new(server, policy);
    for _ in 0..REQUESTS {
        let request = Request::get("http://api.test/")
            .body(String::new())
            .unwrap();
        let _ = client.clone().oneshot(request).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let retries = attempts.load(Ordering::Relaxed) - REQUESTS;
    println!("{REQUESTS} {retries}");
}
