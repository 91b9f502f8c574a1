//! Fleet mode: 4 worker processes in an outage (every attempt 503), one retry budget shared
//! through Redis against 4 budgets of their own.
//!
//! ```text
//! cargo run --example fleet --features redis
//! ```
//!
//! Starts its own `redis-server` on a free port of 127.0.0.1 (skipped when it is not installed),
//! spawns itself 4 times as a worker per mode, and prints the fleet-wide retries against what the
//! budget's ratio allows (10% of the fleet's requests, plus the floor of 10 once per budget).

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use std::convert::Infallible;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tower::{service_fn, ServiceExt};
use tower_http_retry::budget::RetryBudget;
use tower_http_retry::store::Store;
use tower_http_retry::{Retry, RetryPolicy};

const WORKERS: usize = 4;
const REQUESTS: u64 = 300;
const RATIO: f64 = 0.1;
const FLOOR: u32 = 10;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("worker") {
        worker(args.get(2).cloned());
        return;
    }
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    println!("{WORKERS} workers x {REQUESTS} requests, every attempt 503, budget {RATIO} + floor {FLOOR}");
    println!(
        "{:<12} {:>9} {:>8} {:>12} {:>16}",
        "mode", "requests", "retries", "ratio used", "retries/allowed"
    );
    let mut lines = Vec::new();
    for (mode, url) in [("shared", Some(server.url())), ("independent", None)] {
        let children: Vec<_> = (0..WORKERS)
            .map(|_| {
                let mut command = Command::new(&args[0]);
                command.arg("worker");
                if let Some(url) = &url {
                    command.arg(url);
                }
                command
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
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
