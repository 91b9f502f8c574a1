//! The throttle against rate limiters over real sockets on 127.0.0.1, side by side with the policies
//! it replaces.
//!
//! ```text
//! cargo run --release --example throttle                 # workloads 2 to 4 (the project's limiters)
//! cargo run --release --example throttle -- --nginx      # workload 1: a real nginx (limit_req)
//! cargo run --release --example throttle -- --nginx --short   # CI's shorter nginx run
//! ```
//!
//! Workloads: (1) nginx `limit_req` 10 r/s, no burst, 429 + `Retry-After: 1`, 200 requests at 30 r/s;
//! (2) a fixed window of 50 per 5 s sending `RateLimit` and `X-RateLimit-*`, 300 requests at 30 r/s;
//! (3) a token bucket of 10/s with a burst of 20, 500 requests at once; (4) bare 429s at 10 r/s, 200
//! requests at 30 r/s. Every contender runs at the same time against a limiter of its own.
//!
//! Columns: completion time over the ideal (N over the rate, or the arrival span if longer); 429s
//! received over N; the longest wait of a completed request over the longest FIFO-ideal wait;
//! requests completed (and shed); attempts that reached the server before a time it had given.
//! nginx logs no such time, so for workload 1 that column counts attempts that reached nginx less
//! than 1 s after a 429 it sent to the same contender (its `Retry-After: 1`).
//!
//! The plot of completions over time (workload 4) is written to the path after `--svg`,
//! `target/throttle/completions.svg` by default (the README's is `docs/throttle-completions.svg`).

#[path = "../tests/support/limiters.rs"]
mod limiters;
#[path = "support/nginx.rs"]
mod nginx;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use limiters::{arrivals, drive, figures, serve, Ended, Figures, Kind, Limited, Seen};
use tower::retry::Policy;
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
            drive(client, &url, &offsets).await
        }
        _ => drive(Retry::new(client, contender.policy()), &url, &offsets).await,
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
    Ok(())
}

/// Workload 1 against a real nginx, started and stopped here.
async fn nginx_workload(short: bool) -> std::io::Result<()> {
    let requests = if short { 60 } else { 200 };
    let server = nginx::Nginx::start(CONTENDERS.len())?;
    println!("## Workload 1: nginx limit_req 10 r/s, no burst, 429 + Retry-After: 1 ({requests} at 30 r/s)");
    let mut tasks = Vec::new();
    for (i, contender) in CONTENDERS.into_iter().enumerate() {
        let url = format!("http://127.0.0.1:{}/items", server.ports[i]);
        let offsets = arrivals(requests, 30);
        tasks.push(tokio::spawn(async move {
            (contender, run(contender, url, offsets).await)
        }));
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
    table("1: nginx limit_req 10 r/s", &rows);
    let pace = &rows[0].figures;
    let default = &rows[2].figures;
    println!(
        "throttle (nginx): pace completion {:.2} x ideal, 429s {:.1}%; default completion {:.2} x ideal, 429s {:.1}%",
        pace.completion,
        pace.throttled * 100.0,
        default.completion,
        default.throttled * 100.0
    );
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
