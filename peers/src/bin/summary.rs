//! Tabulates the last benchmark run: criterion's estimates and the counted figures, with every ratio
//! taken against the baseline measured in the same run, as Markdown for BENCHMARKS.md.
//!
//! ```sh
//! cargo bench -p peer-benches
//! cargo run --release -p peer-benches --bin summary   # reads target/, or the directory given
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use peer_benches::report::{self, Counted};
use serde_json::Value;

/// One benchmark's typical time per iteration, with its 95% confidence interval, in nanoseconds.
struct Estimate {
    ns: f64,
    low: f64,
    high: f64,
    /// Requests per iteration, when the benchmark declared a throughput.
    elements: Option<f64>,
}

/// Criterion's own choice: the slope when it sampled linearly, else the mean.
fn estimate(target: &Path, group: &str, id: &str) -> Result<Estimate, String> {
    let dir = target.join("criterion").join(group).join(id).join("new");
    let read = |name: &str| -> Result<Value, String> {
        let path = dir.join(name);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    };
    let estimates = read("estimates.json")?;
    let typical = match &estimates["slope"] {
        Value::Null => &estimates["mean"],
        slope => slope,
    };
    let number = |v: &Value| {
        v.as_f64()
            .ok_or_else(|| format!("{group}/{id}: no estimate"))
    };
    let benchmark = read("benchmark.json")?;
    Ok(Estimate {
        ns: number(&typical["point_estimate"])?,
        low: number(&typical["confidence_interval"]["lower_bound"])?,
        high: number(&typical["confidence_interval"]["upper_bound"])?,
        elements: benchmark["throughput"]["Elements"].as_f64(),
    })
}

fn counted(target: &Path, group: &str) -> Result<Vec<Counted>, String> {
    let path = target.join("tmp").join(format!("{group}-counted.tsv"));
    report::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

fn row_of<'a>(rows: &'a [Counted], name: &str) -> Result<&'a Counted, String> {
    rows.iter()
        .find(|row| row.contender == name)
        .ok_or_else(|| format!("no counted figures for {name}"))
}

/// An in-memory group: time per request and its ratio to `baseline`, then the counted figures.
fn in_memory(
    target: &Path,
    group: &str,
    baseline: &str,
    contenders: &[&str],
) -> Result<(), String> {
    let counted = counted(target, group)?;
    let base = estimate(target, group, baseline)?;
    println!("### {group}\n");
    println!("| contender | ns per request (95% CI) | vs {baseline} | allocations per request | bytes allocated | body bytes copied | inner calls |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for name in contenders {
        let time = estimate(target, group, name)?;
        let row = row_of(&counted, name)?;
        println!(
            "| {name} | {:.0} ({:.0}–{:.0}) | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} |",
            time.ns,
            time.low,
            time.high,
            time.ns / base.ns,
            row.allocations,
            row.allocated_bytes,
            row.copied_body_bytes,
            row.inner_calls
        );
    }
    for row in counted
        .iter()
        .filter(|row| !contenders.contains(&row.contender.as_str()))
    {
        println!(
            "| *{}* | | | {:.2} | {:.0} | | |",
            row.contender, row.allocations, row.allocated_bytes
        );
    }
    println!();
    Ok(())
}

/// The loopback group: requests per second and the ratio to the bare client.
fn loopback(target: &Path, contenders: &[&str]) -> Result<(), String> {
    let group = "loopback";
    let per_second = |e: &Estimate| e.elements.unwrap_or(1.0) * 1e9 / e.ns;
    let base = per_second(&estimate(target, group, contenders[0])?);
    println!("### {group}\n");
    println!("| client | requests/s (95% CI) | vs {} |", contenders[0]);
    println!("|---|---:|---:|");
    for name in contenders {
        let e = estimate(target, group, name)?;
        let slow = Estimate { ns: e.high, ..e };
        let fast = Estimate { ns: e.low, ..e };
        println!(
            "| {name} | {:.0} ({:.0}–{:.0}) | {:.3} |",
            per_second(&e),
            per_second(&slow),
            per_second(&fast),
            per_second(&e) / base
        );
    }
    println!();
    Ok(())
}

fn run(target: &Path) -> Result<(), String> {
    in_memory(
        target,
        "success_path",
        "bare",
        &[
            "bare",
            "tower_retry",
            "tower_resilience_retry",
            "tower_http_retry",
        ],
    )?;
    in_memory(
        target,
        "retry_path",
        "tower_retry",
        &["tower_retry", "tower_resilience_retry", "tower_http_retry"],
    )?;
    loopback(
        target,
        &[
            "bare",
            "tower_retry",
            "tower_http_retry",
            "reqwest",
            "reqwest_middleware_retry",
        ],
    )
}

fn main() -> ExitCode {
    let target = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("target"), PathBuf::from);
    match run(&target) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("summary: {why} (run `cargo bench -p peer-benches` first)");
            ExitCode::FAILURE
        }
    }
}
