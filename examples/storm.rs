//! What a fleet of retrying requests does to a server in trouble, and what the budget, jitter and
//! the throttle do about it: a seeded simulation against an in-memory server model under tokio's paused
//! clock, so minutes of traffic run in about a second and every run prints the same figures.
//!
//! Run it with `cargo run --example storm [SVG PATH]`. It prints three tables (markdown) and writes a
//! plot of retry arrivals over time to the path given, `target/storm/retry-arrivals.svg` by default
//! (the README's plot is `docs/retry-arrivals.svg`, written by this example).

// The storm test's model: it uses the crate's types, so it cannot be in the support crate.
#[path = "../tests/model/mod.rs"]
mod model;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use model::{attempts_per_request, busiest_over_mean, drive, spread, Behaviour, Model};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::classify::RetryClass;
use tower_http_retry::throttle::Throttle;
use tower_http_retry::{RetryLayer, RetryPolicy};

const SEED: u64 = 2024;
const HERD: usize = 1000;
const WINDOW: Duration = Duration::from_millis(100);

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> std::io::Result<()> {
    let svg_path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/storm/retry-arrivals.svg"));

    storm().await;
    herd().await;
    throttle().await;

    let plot = plot(
        &arrivals_of_a_herd(Jitter::None).await,
        &arrivals_of_a_herd(Jitter::Full).await,
    );
    if let Some(dir) = svg_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&svg_path, plot)?;
    println!("Plot of retry arrivals written to {}", svg_path.display());
    Ok(())
}

/// Attempts per request: 10,000 requests spread over 60 s, each attempt failing (503) with a given
/// probability, 4 attempts at most, with and without the default budget.
async fn storm() {
    println!("## Attempts per request\n");
    println!("10,000 requests over 60 s; each attempt fails (503) with the given probability; 4 attempts at most.\n");
    println!("| failure rate | no budget | default budget (10%) |");
    println!("|---:|---:|---:|");
    for rate in [0.0, 0.1, 0.5, 1.0] {
        let mut row = format!("| {:.0}% |", rate * 100.0);
        for budget in [false, true] {
            let model = Model::new(Behaviour::FailRate(rate), SEED);
            let mut policy = RetryPolicy::default().seed(SEED);
            if !budget {
                policy = policy.no_retry_budget();
            }
            let starts = spread(10_000, Duration::from_secs(60));
            let ended = drive(RetryLayer::new(policy), &model, &starts).await;
            write!(row, " {:.3} |", attempts_per_request(&ended)).unwrap();
        }
        println!("{row}");
    }
    println!();
}

/// The busiest 100 ms of retries after 1000 requests fail at the same instant, over the mean.
async fn herd() {
    println!("## A herd\n");
    println!("1000 requests fail at the same instant and succeed on their retry. Busiest 100 ms window of");
    println!("retries over the mean per 100 ms, from the failure to the last retry (1.0 is perfectly even).\n");
    println!("| jitter | busiest 100 ms / mean | retries arrive between |");
    println!("|---|---:|---|");
    for (name, jitter) in [
        ("full (default)", Jitter::Full),
        ("equal", Jitter::Equal),
        ("decorrelated", Jitter::Decorrelated),
        ("none", Jitter::None),
    ] {
        let model = Model::new(Behaviour::FirstAttemptFails, SEED);
        let policy = RetryPolicy::default()
            .backoff(Backoff::default().jitter(jitter))
            .no_retry_budget()
            .seed(SEED);
        drive(RetryLayer::new(policy), &model, &[Duration::ZERO; HERD]).await;
        let retries = model.retry_times();
        let first = retries.iter().min().copied().unwrap_or_default();
        let last = retries.iter().max().copied().unwrap_or_default();
        println!(
            "| {name} | {:.2} | {} and {} ms |",
            busiest_over_mean(&retries, WINDOW),
            first.as_millis(),
            last.as_millis()
        );
    }
    println!();
}

/// 429s received against a server that admits 10 requests a second, with and without the throttle.
async fn throttle() {
    println!("## The throttle\n");
    println!("60 requests, 20 a second for 3 s, against a server that admits 10 a second and answers the");
    println!(
        "rest 429 with Retry-After, with or without advertising its quota in `RateLimit` headers;"
    );
    println!("up to 10 attempts for throttled requests, no budget.\n");
    println!("| server | throttle | 429s received | completed | attempts per request | last completion |");
    println!("|---|---|---:|---:|---:|---:|");
    for (advertise, on) in [(false, false), (false, true), (true, false), (true, true)] {
        let behaviour = Behaviour::RateLimited {
            per_second: 10,
            advertise,
        };
        let model = Model::new(behaviour, SEED);
        let policy = RetryPolicy::default()
            .max_attempts_for(RetryClass::Throttling, 10)
            .no_retry_budget()
            .seed(SEED);
        let policy = match on {
            true => policy.throttle(Throttle::new()),
            false => policy.no_throttle(),
        };
        let ended = drive(
            RetryLayer::new(policy),
            &model,
            &spread(60, Duration::from_secs(3)),
        )
        .await;
        let last = model
            .arrivals()
            .iter()
            .filter(|a| a.status == 200)
            .map(|a| a.at)
            .max()
            .unwrap_or_default();
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.1} s |",
            if advertise {
                "Retry-After and RateLimit"
            } else {
                "Retry-After"
            },
            if on { "on" } else { "off" },
            model.count(429),
            ended.iter().filter(|e| e.succeeded()).count(),
            attempts_per_request(&ended),
            last.as_secs_f64()
        );
    }
    println!();
}

/// Retry arrival times when 1000 requests fail at the same instant and the server stays down (every
/// attempt fails, 4 attempts, no budget).
async fn arrivals_of_a_herd(jitter: Jitter) -> Vec<Duration> {
    let model = Model::new(Behaviour::FailRate(1.0), SEED);
    let policy = RetryPolicy::default()
        .backoff(Backoff::default().jitter(jitter))
        .no_retry_budget()
        .seed(SEED);
    drive(RetryLayer::new(policy), &model, &[Duration::ZERO; HERD]).await;
    model.retry_times()
}

/// A histogram of both series (20 ms bins), hand-written SVG.
fn plot(no_jitter: &[Duration], full_jitter: &[Duration]) -> String {
    const BIN_MS: u64 = 20;
    const SPAN_MS: u64 = 2400;
    const Y_MAX: u32 = 200;
    const BINS: usize = (SPAN_MS / BIN_MS) as usize;
    let (left, top, width, height) = (56.0, 40.0, 640.0, 220.0);
    let histogram = |times: &[Duration]| {
        let mut bins = vec![0u32; BINS];
        for t in times {
            let bin = (t.as_millis() as u64 / BIN_MS) as usize;
            if let Some(count) = bins.get_mut(bin) {
                *count += 1;
            }
        }
        bins
    };
    let x = |ms: f64| left + ms / SPAN_MS as f64 * width;
    let y = |count: u32| top + height - f64::from(count.min(Y_MAX)) / f64::from(Y_MAX) * height;

    let mut svg = String::new();
    let w = &mut svg;
    writeln!(w, r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 720 320" width="720" height="320" font-family="sans-serif" font-size="12">"#).unwrap();
    writeln!(w, r#"<rect width="720" height="320" fill="white"/>"#).unwrap();
    writeln!(w, r#"<text x="{left}" y="22" font-size="14" font-weight="bold">Retries of 1000 requests that fail at the same instant (server down, 4 attempts)</text>"#).unwrap();
    // Axes, grid and ticks.
    for count in (0..=Y_MAX).step_by(50) {
        let yy = y(count);
        writeln!(w, r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{count}</text>"##, left + width, left - 6.0, yy + 4.0).unwrap();
    }
    for ms in (0..=SPAN_MS).step_by(500) {
        let xx = x(ms as f64);
        writeln!(w, r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#888"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{:.1} s</text>"##, top + height, top + height + 5.0, top + height + 18.0, ms as f64 / 1000.0).unwrap();
    }
    writeln!(w, r##"<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle">retries per {BIN_MS} ms</text>"##, top + height / 2.0, top + height / 2.0).unwrap();
    writeln!(
        w,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">time since the failure</text>"##,
        left + width / 2.0,
        top + height + 36.0
    )
    .unwrap();
    // No jitter: a few bins holding every retry; drawn as bars, clipped at the top and labelled.
    for (bin, count) in histogram(no_jitter).into_iter().enumerate() {
        if count == 0 {
            continue;
        }
        let xx = x((bin as u64 * BIN_MS) as f64);
        let yy = y(count);
        let bar = x(BIN_MS as f64) - left;
        writeln!(w, r##"<rect x="{xx:.1}" y="{yy:.1}" width="{bar:.1}" height="{:.1}" fill="#d62728" opacity="0.85"/>"##, top + height - yy).unwrap();
        if count > Y_MAX {
            writeln!(
                w,
                r##"<text x="{:.1}" y="{:.1}" fill="#d62728" font-weight="bold">{count} ↑</text>"##,
                xx + bar + 3.0,
                top + 12.0
            )
            .unwrap();
        }
    }
    // Full jitter: a step line.
    let mut points = String::new();
    for (bin, count) in histogram(full_jitter).into_iter().enumerate() {
        let (x0, x1) = (
            x((bin as u64 * BIN_MS) as f64),
            x(((bin as u64 + 1) * BIN_MS) as f64),
        );
        let yy = y(count);
        write!(points, "{x0:.1},{yy:.1} {x1:.1},{yy:.1} ").unwrap();
    }
    writeln!(
        w,
        r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
        points.trim_end()
    )
    .unwrap();
    // Legend.
    writeln!(w, r##"<rect x="380" y="58" width="14" height="10" fill="#d62728"/><text x="400" y="67">no jitter: waves of 1000</text>"##).unwrap();
    writeln!(w, r##"<line x1="380" y1="84" x2="394" y2="84" stroke="#1f77b4" stroke-width="2"/><text x="400" y="88">full jitter (default): spread</text>"##).unwrap();
    writeln!(w, "</svg>").unwrap();
    svg
}
