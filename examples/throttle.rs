//! The throttle against rate limiters over real sockets on 127.0.0.1, side by side with the policies
//! it replaces.
//!
//! ```text
//! cargo run --release --example throttle                 # workloads 2 to 5 (the project's limiters)
//! cargo run --release --example throttle -- --nginx      # workload 1: a real nginx (limit_req)
//! cargo run --release --example throttle -- --nginx --short   # CI's shorter nginx run
//! ```
//!
//! Workloads: (1) nginx `limit_req` 10 r/s, no burst, 429 + `Retry-After: 1`, 200 requests at 30 r/s
//! and, beside them, a short burst of 50 at 30 r/s (`--short`: 60 at 30 r/s only); (2) a fixed window
//! of 50 per 5 s sending `RateLimit` and `X-RateLimit-*`, 300 requests at 30 r/s; (3) a token bucket
//! of 10/s with a burst of 20, 500 requests at once; (4) bare 429s at 10 r/s, 200 requests at 30 r/s.
//! Every contender runs at the same time against a limiter of its own.
//!
//! Workload 5, tenancy, runs after the others: one server that limits per credential and per route,
//! 200 r/s for 10 s with `x-api-key: alice` or `bob`, against `RetryPolicy::default()` and
//! `RetryPolicy::default().no_throttle()` side by side. (a) alice's requests to `/limited` (1% of all
//! requests) always answer a bare 429; (b) 1% of alice's requests, on every route, chosen by a seeded
//! hash of the request's id, always answer a bare 429. Everything else answers 200 at once. The run
//! exits 1 when the default, for the requests never limited (all of them, and bob's), serves under
//! 95% of their offered rate, fails any, or has a p90 more than 10 ms above no throttle's.
//!
//! Columns: completion time over the ideal (N over the rate, or the arrival span if longer); 429s
//! received over N; the longest wait of a completed request over the longest FIFO-ideal wait;
//! requests completed (and shed); attempts that reached the server before a time it had given.
//! nginx logs no such time, so for workload 1 that column counts attempts that reached nginx less
//! than 1 s after a 429 it sent to the same contender (its `Retry-After: 1`). Workload 5's: requests
//! completed per second (until the last completed) over the offered rate; requests not answered
//! 200; p50 and p90 from the call to its answer (the throttle's wait included); the bare 429s the
//! server sent over N.
//!
//! The plot of completions over time (workload 4) is written to the path after `--svg`,
//! `target/throttle/completions.svg` by default (the README's is `docs/throttle-completions.svg`).

use retry_test_support::{checks, nginx};

use retry_test_support::limiters;

/// Whether a call ended because the throttle shed it: what the limiters' `drive` counts apart (the
/// support crate cannot name this crate's `Error`).
fn is_shed(error: &retry_test_support::BoxError) -> bool {
    error
        .downcast_ref::<tower_http_retry::Error>()
        .is_some_and(tower_http_retry::Error::is_shed)
}

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use checks::Checks;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use limiters::{arrivals, drive, figures, serve, Ended, Figures, Kind, Limited, Seen};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};
use tower::retry::Policy;
use tower::{Service, ServiceExt};
use tower_http_retry::throttle::Throttle;
use tower_http_retry::{Retry, RetryPolicy};

/// The policies compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    /// Pace mode, engaged from the first request.
    Pace,
    /// Shed mode: no wait in line longer than 2 s, engaged from the first request.
    Shed,
    /// `RetryPolicy::default()`: pace mode engaged on the first throttling answer.
    Default,
    /// The previous default: no throttle (the retry budget on, no pushback).
    NoThrottle,
    /// A loop like tower::retry's with a fixed backoff: up to 10 attempts, 100 ms apart.
    FixedBackoff,
}

const CONTENDERS: [Contender; 5] = [
    Contender::Pace,
    Contender::Shed,
    Contender::Default,
    Contender::NoThrottle,
    Contender::FixedBackoff,
];

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::Pace => "pace",
            Contender::Shed => "shed (2 s)",
            Contender::Default => "default",
            Contender::NoThrottle => "no throttle (old default)",
            Contender::FixedBackoff => "fixed backoff loop (tower::retry-like)",
        }
    }

    fn policy(self) -> RetryPolicy {
        let policy = RetryPolicy::default().deadline(Duration::from_secs(120));
        match self {
            Contender::Pace => policy.throttle(Throttle::new().from_first_request()),
            Contender::Shed => policy.throttle(
                Throttle::new()
                    .from_first_request()
                    .shed(Duration::from_secs(2)),
            ),
            Contender::Default => policy,
            Contender::NoThrottle | Contender::FixedBackoff => policy.no_throttle(),
        }
    }
}

/// tower::retry with a fixed backoff, retrying 429s.
#[derive(Clone)]
struct FixedBackoff {
    left: u32,
}

impl<E> Policy<Request<Full<Bytes>>, Response<Incoming>, E> for FixedBackoff {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _: &mut Request<Full<Bytes>>,
        result: &mut Result<Response<Incoming>, E>,
    ) -> Option<Self::Future> {
        match result {
            Ok(response) if response.status() == 429 && self.left > 0 => {
                self.left -= 1;
                Some(tokio::time::sleep(Duration::from_millis(100)))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, request: &Request<Full<Bytes>>) -> Option<Request<Full<Bytes>>> {
        let mut copy = Request::new(request.body().clone());
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.headers_mut() = request.headers().clone();
        Some(copy)
    }
}

/// One workload.
#[derive(Clone, Copy)]
struct Workload {
    name: &'static str,
    kind: Kind,
    requests: usize,
    per_second: u32,
}

const EMBEDDED: [Workload; 3] = [
    Workload {
        name: "2: fixed window 50/5 s, RateLimit + X-RateLimit-*, 300 at 30 r/s",
        kind: Kind::WINDOW,
        requests: 300,
        per_second: 30,
    },
    Workload {
        name: "3: token bucket 10/s burst 20, 500 at once",
        kind: Kind::BUCKET,
        requests: 500,
        per_second: 0,
    },
    Workload {
        name: "4: bare 429s at 10 r/s, 200 at 30 r/s",
        kind: Kind::BARE,
        requests: 200,
        per_second: 30,
    },
];

/// Runs `contender` against `url` (a limiter of its own) and returns how each request ended.
async fn run(contender: Contender, url: String, offsets: Vec<Duration>) -> Vec<Ended> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    match contender {
        Contender::FixedBackoff => {
            let client = tower::retry::Retry::new(FixedBackoff { left: 9 }, client);
            drive(client, &url, &offsets, is_shed).await
        }
        _ => {
            drive(
                Retry::new(client, contender.policy()),
                &url,
                &offsets,
                is_shed,
            )
            .await
        }
    }
}

struct Row {
    contender: Contender,
    figures: Figures,
    ended: Vec<Ended>,
}

fn table(workload: &str, rows: &[Row]) {
    println!("\n### Workload {workload}\n");
    println!("| contender | completion / ideal | 429s / N | longest wait / FIFO ideal | completed | shed | before the server's time |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let f = &row.figures;
        println!(
            "| {} | {:.2} | {:.1}% | {:.2} | {} | {} | {} |",
            row.contender.name(),
            f.completion,
            f.throttled * 100.0,
            f.longest_wait,
            f.completed,
            f.shed,
            f.early
        );
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let svg_path = args
        .iter()
        .position(|a| a == "--svg")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/throttle/completions.svg"));
    if args.iter().any(|a| a == "--nginx") {
        let short = args.iter().any(|a| a == "--short");
        return nginx_workload(short).await;
    }

    println!("## The throttle against the project's limiters (127.0.0.1, real time)");
    let mut tasks = Vec::new();
    for workload in EMBEDDED {
        for contender in CONTENDERS {
            let limiter = Limited::new(workload.kind);
            let (addr, server) = serve(limiter.clone()).await;
            let offsets = arrivals(workload.requests, workload.per_second);
            let url = format!("http://{addr}/items");
            tasks.push(tokio::spawn(async move {
                let ended = run(contender, url, offsets).await;
                server.abort();
                let log = limiter.log();
                let figures = figures(workload.kind, &ended, &log);
                Row {
                    contender,
                    figures,
                    ended,
                }
            }));
        }
    }
    let mut rows = Vec::new();
    for task in tasks {
        rows.push(task.await.expect("a run"));
    }
    let mut worst = (0.0f64, 0.0f64);
    let mut plotted = Vec::new();
    for (workload, rows) in EMBEDDED.iter().zip(rows.chunks(CONTENDERS.len())) {
        table(workload.name, rows);
        let pace = &rows[0].figures;
        worst = (worst.0.max(pace.completion), worst.1.max(pace.throttled));
        if workload.kind.rate() > 0.0 && std::ptr::eq(workload, &EMBEDDED[2]) {
            plotted = rows
                .iter()
                .map(|r| (r.contender, r.ended.clone()))
                .collect();
        }
    }
    if std::env::var_os("THROTTLE_ERRORS").is_some() {
        for row in &rows {
            let mut errors: Vec<&str> = row
                .ended
                .iter()
                .filter_map(|e| e.error.as_deref())
                .collect();
            errors.sort();
            errors.dedup();
            println!(
                "{}: {:?}",
                row.contender.name(),
                &errors[..errors.len().min(3)]
            );
        }
    }
    let missed = tenancy().await;
    let plot = plot(EMBEDDED[2].name, &plotted, 20.0);
    if let Some(dir) = svg_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&svg_path, plot)?;
    println!(
        "\nPlot of completions over time written to {}",
        svg_path.display()
    );
    println!(
        "throttle: pace worst completion {:.2} x ideal, worst 429s {:.1}% of requests",
        worst.0,
        worst.1 * 100.0
    );
    if !missed.is_empty() {
        eprintln!("throttle: tenancy goals missed: {}", missed.join("; "));
        std::process::exit(1);
    }
    Ok(())
}

/// Workload 5's variants: which of alice's requests the server refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tenancy {
    /// alice's requests to `/limited` (1% of all requests) always answer a bare 429.
    Route,
    /// 1% of alice's requests, on every route, always answer a bare 429.
    Random,
}

const TENANCY: [Tenancy; 2] = [Tenancy::Route, Tenancy::Random];
/// The contenders of workload 5: `RetryPolicy::default()` and `.no_throttle()`.
const TENANTS_CONTENDERS: [Contender; 2] = [Contender::Default, Contender::NoThrottle];
const TENANCY_RATE: u32 = 200;
const TENANCY_SECONDS: u32 = 10;
/// The share of requests refused: of all requests (a), of alice's (b).
const TENANCY_REFUSED: f64 = 0.01;
const SEED: u64 = 0x5eed_7e4a_2c1d;

/// SplitMix64: a seeded, deterministic hash of `salt` and `i` to [0, 1).
fn chance(salt: u64, i: u64) -> f64 {
    let mut z = SEED
        .wrapping_add(salt.wrapping_mul(0xd1b5_4a32_d192_ed03))
        .wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl Tenancy {
    fn name(self) -> &'static str {
        match self {
            Tenancy::Route => "a: alice's /limited (1% of requests)",
            Tenancy::Random => "b: 1% of alice's, at random",
        }
    }

    /// The key and path of request `i`.
    fn request(self, i: u64) -> (&'static str, &'static str) {
        if self == Tenancy::Route && chance(1, i) < TENANCY_REFUSED {
            return ("alice", "/limited");
        }
        let alice = chance(2, i) < 0.5;
        let route = chance(3, i);
        match (self, alice) {
            // alice's other requests go elsewhere; bob's to /limited are served.
            (Tenancy::Route, true) if route < 0.5 => ("alice", "/items"),
            (Tenancy::Route, true) => ("alice", "/orders"),
            (_, alice) => (
                if alice { "alice" } else { "bob" },
                match route {
                    r if r < 1.0 / 3.0 => "/items",
                    r if r < 2.0 / 3.0 => "/orders",
                    _ => "/limited",
                },
            ),
        }
    }

    /// Whether the server refuses request `id`, sent with `key` to `path`: the limit is per
    /// credential and per route (a), or per credential and per request (b).
    fn refuses(self, key: &str, path: &str, id: u64) -> bool {
        key == "alice"
            && match self {
                Tenancy::Route => path == "/limited",
                Tenancy::Random => chance(4, id) < TENANCY_REFUSED,
            }
    }
}

/// What a tenancy server saw: attempts and 429s.
#[derive(Default)]
struct Counts {
    attempts: AtomicUsize,
    refused: AtomicUsize,
}

/// Serves `variant` over HTTP/1.1 on 127.0.0.1 until the returned task is aborted: a bare 429 for
/// the requests it refuses, 200 at once for everything else.
async fn serve_tenancy(
    variant: Tenancy,
    counts: Arc<Counts>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let counts = counts.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let header = |name| {
                        request
                            .headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                    };
                    let id = header("x-request-id").parse().unwrap_or(u64::MAX);
                    let refused = variant.refuses(header("x-api-key"), request.uri().path(), id);
                    counts.attempts.fetch_add(1, Ordering::Relaxed);
                    if refused {
                        counts.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    let status = if refused { 429 } else { 200 };
                    let response = Response::builder()
                        .status(status)
                        .body(Full::new(Bytes::new()))
                        .expect("a valid response");
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, task)
}

/// How one tenancy request ended.
#[derive(Clone, Debug)]
struct Done {
    key: &'static str,
    /// The server refuses it, every attempt.
    limited: bool,
    ok: bool,
    /// From the call to its answer (the throttle's wait included).
    latency: Duration,
    /// From the start of the run.
    finished: Duration,
}

/// Sends `variant`'s requests to `base` through `client` at `offsets`; how each ended, in order.
async fn drive_tenancy<S, B>(
    client: S,
    base: &str,
    variant: Tenancy,
    offsets: &[Duration],
) -> Vec<Done>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<tower_http_retry::BoxError> + Send,
    B: Body + Send + 'static,
{
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for (i, offset) in offsets.iter().copied().enumerate() {
        let client = client.clone();
        let (key, path) = variant.request(i as u64);
        let limited = variant.refuses(key, path, i as u64);
        let request = Request::get(format!("{base}{path}"))
            .header("x-api-key", key)
            .header("x-request-id", i)
            .body(Full::new(Bytes::new()))
            .unwrap();
        tasks.spawn(async move {
            sleep_until(start + offset).await;
            let sent = Instant::now();
            let result = client.oneshot(request).await;
            let ok = matches!(&result, Ok(response) if response.status() == StatusCode::OK);
            let done = Done {
                key,
                limited,
                ok,
                latency: sent.elapsed(),
                finished: start.elapsed(),
            };
            (i, done)
        });
    }
    let mut done: Vec<Option<Done>> = vec![None; offsets.len()];
    while let Some(joined) = tasks.join_next().await {
        let (i, end) = joined.unwrap();
        done[i] = Some(end);
    }
    done.into_iter().map(Option::unwrap).collect()
}

/// The figures of one group of tenancy requests.
#[derive(Clone, Copy, Debug)]
struct Group {
    n: usize,
    /// Completed per second, until the last completed, over the offered rate.
    served: f64,
    errors: usize,
    p50: Duration,
    p90: Duration,
}

fn group(done: &[Done], span: Duration, pick: impl Fn(&Done) -> bool) -> Group {
    let picked: Vec<&Done> = done.iter().filter(|d| pick(d)).collect();
    let n = picked.len();
    let ok: Vec<&&Done> = picked.iter().filter(|d| d.ok).collect();
    let last = ok.iter().map(|d| d.finished).max().unwrap_or_default();
    let served = match n {
        0 => 0.0,
        n => ok.len() as f64 / n as f64 * span.as_secs_f64() / last.max(span).as_secs_f64(),
    };
    let mut latencies: Vec<Duration> = picked.iter().map(|d| d.latency).collect();
    latencies.sort();
    let rank = |p: f64| match n {
        0 => Duration::ZERO,
        n => latencies[((p * n as f64).ceil() as usize).clamp(1, n) - 1],
    };
    Group {
        n,
        served,
        errors: n - ok.len(),
        p50: rank(0.5),
        p90: rank(0.9),
    }
}

/// One tenancy run.
struct TenancyRow {
    variant: Tenancy,
    contender: Contender,
    /// Never limited: all, bob's, alice's; then the limited.
    groups: [Group; 4],
    /// 429s the server sent, over requests.
    refused: f64,
}

const GROUPS: [&str; 4] = [
    "never limited",
    "  of them bob's",
    "  of them alice's",
    "limited (alice's)",
];

/// Workload 5: runs both variants against both contenders at once, prints the table and the checks,
/// and returns the goals missed.
async fn tenancy() -> Vec<String> {
    let n = (TENANCY_RATE * TENANCY_SECONDS) as usize;
    let mut tasks = Vec::new();
    for variant in TENANCY {
        for contender in TENANTS_CONTENDERS {
            let counts = Arc::new(Counts::default());
            let (addr, server) = serve_tenancy(variant, counts.clone()).await;
            let offsets = arrivals(n, TENANCY_RATE);
            tasks.push(tokio::spawn(async move {
                let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
                let policy = match contender {
                    Contender::NoThrottle => RetryPolicy::default().no_throttle(),
                    _ => RetryPolicy::default(),
                };
                let base = format!("http://{addr}");
                let done =
                    drive_tenancy(Retry::new(client, policy), &base, variant, &offsets).await;
                server.abort();
                let span = offsets.last().copied().unwrap_or_default();
                let groups = [
                    group(&done, span, |d| !d.limited),
                    group(&done, span, |d| d.key == "bob"),
                    group(&done, span, |d| d.key == "alice" && !d.limited),
                    group(&done, span, |d| d.limited),
                ];
                let refused = counts.refused.load(Ordering::Relaxed) as f64 / n as f64;
                TenancyRow {
                    variant,
                    contender,
                    groups,
                    refused,
                }
            }));
        }
    }
    let mut rows = Vec::new();
    for task in tasks {
        rows.push(task.await.expect("a run"));
    }
    println!(
        "\n### Workload 5: tenancy, x-api-key alice or bob, {TENANCY_RATE} r/s for {TENANCY_SECONDS} s\n"
    );
    println!(
        "| variant | contender | requests | N | served / offered | errors | p50 | p90 | 429s / N |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for row in &rows {
        for (k, (name, g)) in GROUPS.iter().zip(&row.groups).enumerate() {
            let first = k == 0;
            println!(
                "| {} | {} | {name} | {} | {:.1}% | {} | {:.2} ms | {:.2} ms | {} |",
                if first { row.variant.name() } else { "" },
                if first { row.contender.name() } else { "" },
                g.n,
                g.served * 100.0,
                g.errors,
                ms(g.p50),
                ms(g.p90),
                if first {
                    format!("{:.1}%", row.refused * 100.0)
                } else {
                    String::new()
                },
            );
        }
    }
    println!("\nTenancy goals (the default, requests never limited):");
    let mut checks = Checks::default();
    for pair in rows.chunks(TENANTS_CONTENDERS.len()) {
        let (default, none) = (&pair[0], &pair[1]);
        let variant = default.variant.name();
        for (k, who) in [(0, "never limited"), (1, "bob's")] {
            let (d, o) = (default.groups[k], none.groups[k]);
            checks.expect(
                d.served >= 0.95,
                &format!(
                    "{variant}: {who} served {:.1}% of their offered rate (>= 95%)",
                    d.served * 100.0
                ),
            );
            checks.expect(
                d.errors == 0,
                &format!("{variant}: {who} failed {} of {} (none)", d.errors, d.n),
            );
            checks.expect(
                d.p90 <= o.p90 + Duration::from_millis(10),
                &format!(
                    "{variant}: {who} p90 {:.2} ms, no throttle {:.2} ms (at most 10 ms more)",
                    ms(d.p90),
                    ms(o.p90)
                ),
            );
        }
    }
    checks.0
}

/// Workload 1 against a real nginx, started and stopped here: 200 requests at 30 r/s and, beside
/// them, a short burst of 50 at 30 r/s (`short`: 60 at 30 r/s only, CI's quick run).
async fn nginx_workload(short: bool) -> std::io::Result<()> {
    let runs: &[usize] = if short { &[60] } else { &[200, 50] };
    let server = nginx::Nginx::start(CONTENDERS.len() * runs.len())?;
    let sizes: Vec<String> = runs.iter().map(|n| format!("{n} at 30 r/s")).collect();
    println!(
        "## Workload 1: nginx limit_req 10 r/s, no burst, 429 + Retry-After: 1 ({})",
        sizes.join(", beside ")
    );
    let mut tasks = Vec::new();
    for (r, &requests) in runs.iter().enumerate() {
        for (i, contender) in CONTENDERS.into_iter().enumerate() {
            let url = format!(
                "http://127.0.0.1:{}/items",
                server.ports[r * CONTENDERS.len() + i]
            );
            let offsets = arrivals(requests, 30);
            tasks.push(tokio::spawn(async move {
                (contender, run(contender, url, offsets).await)
            }));
        }
    }
    let mut rows = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let (contender, ended) = task.await.expect("a run");
        let log: Vec<Seen> = server.log(i)?;
        let figures = figures(Kind::NGINX, &ended, &log);
        rows.push(Row {
            contender,
            figures,
            ended,
        });
    }
    drop(server);
    for (&requests, rows) in runs.iter().zip(rows.chunks(CONTENDERS.len())) {
        table(
            &format!("1: nginx limit_req 10 r/s, {requests} at 30 r/s"),
            rows,
        );
    }
    // The first run's line last, as before; the others above it.
    let summary = |rows: &[Row]| {
        let (pace, default) = (&rows[0].figures, &rows[2].figures);
        format!(
            "pace completion {:.2} x ideal, 429s {:.1}%; default completion {:.2} x ideal, 429s {:.1}%",
            pace.completion,
            pace.throttled * 100.0,
            default.completion,
            default.throttled * 100.0
        )
    };
    println!();
    for (&requests, rows) in runs.iter().zip(rows.chunks(CONTENDERS.len())).skip(1) {
        println!("throttle (nginx, {requests} at 30 r/s): {}", summary(rows));
    }
    println!("throttle (nginx): {}", summary(&rows[..CONTENDERS.len()]));
    Ok(())
}

/// Completed requests over time, one line per contender.
fn plot(title: &str, runs: &[(Contender, Vec<Ended>)], ideal_rate: f64) -> String {
    let (left, top, width, height) = (56.0, 40.0, 640.0, 240.0);
    let n = runs.first().map_or(1, |(_, e)| e.len()) as f64;
    let span = runs
        .iter()
        .flat_map(|(_, e)| e.iter().filter(|e| e.ok).map(|e| e.finished.as_secs_f64()))
        .fold(n / ideal_rate, f64::max)
        .ceil();
    let x = |s: f64| left + s / span * width;
    let y = |c: f64| top + height - c / n * height;
    let colours = ["#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd"];
    let mut w = String::new();
    writeln!(w, r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 720 360" width="720" height="360" font-family="sans-serif" font-size="12">"#).unwrap();
    writeln!(w, r#"<rect width="720" height="360" fill="white"/>"#).unwrap();
    writeln!(w, r#"<text x="{left}" y="22" font-size="14" font-weight="bold">Completions over time, workload {title}</text>"#).unwrap();
    for i in 0..=4 {
        let c = n * f64::from(i) / 4.0;
        let yy = y(c);
        writeln!(w, r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{c:.0}</text>"##, left + width, left - 6.0, yy + 4.0).unwrap();
    }
    let step = if span > 40.0 { 10.0 } else { 5.0 };
    let mut s = 0.0;
    while s <= span {
        let xx = x(s);
        writeln!(w, r##"<line x1="{xx:.1}" y1="{top}" x2="{xx:.1}" y2="{:.1}" stroke="#eee"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{s:.0} s</text>"##, top + height, top + height + 16.0).unwrap();
        s += step;
    }
    // The ideal: N at the server's rate, from the start.
    writeln!(w, r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 4"/>"##, x(0.0), y(0.0), x(n / ideal_rate), y(n)).unwrap();
    for (i, (contender, ended)) in runs.iter().enumerate() {
        let mut times: Vec<f64> = ended
            .iter()
            .filter(|e| e.ok)
            .map(|e| e.finished.as_secs_f64())
            .collect();
        times.sort_by(f64::total_cmp);
        let mut points = format!("{:.1},{:.1}", x(0.0), y(0.0));
        for (k, t) in times.iter().enumerate() {
            write!(points, " {:.1},{:.1}", x(*t), y(k as f64 + 1.0)).unwrap();
        }
        let colour = colours[i % colours.len()];
        writeln!(
            w,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>"#
        )
        .unwrap();
        let ly = top + 14.0 + 16.0 * i as f64;
        writeln!(w, r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{} ({} completed)</text>"#, left + 10.0, left + 30.0, left + 36.0, ly + 4.0, contender.name(), times.len()).unwrap();
    }
    let ly = top + 14.0 + 16.0 * runs.len() as f64;
    writeln!(w, r##"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="#999" stroke-dasharray="4 4"/><text x="{:.1}" y="{:.1}">ideal: the server's rate from the start</text>"##, left + 10.0, left + 30.0, left + 36.0, ly + 4.0).unwrap();
    writeln!(w, "</svg>").unwrap();
    w
}
