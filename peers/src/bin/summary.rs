//! Tabulates the last benchmark run as Markdown for BENCHMARKS.md: the interleaved figures, criterion's
//! estimates and the counted figures, every ratio taken against the baseline of the same run.
//!
//! ```sh
//! cargo bench -p peer-benches
//! cargo run --release -p peer-benches --bin summary   # reads target/, or the directory given
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use peer_benches::paired::{Paired, Ratio};
use peer_benches::report::{self, Counted};
use serde_json::Value;

/// One benchmark's typical time per iteration, with its 95% confidence interval, in nanoseconds.
struct Estimate {
    ns: f64,
    low: f64,
    high: f64,
    /// Requests per iteration, when the benchmark declared a throughput.
    elements: f64,
}

/// Criterion's own choice of typical time: the slope when it sampled linearly, else the mean.
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
        elements: benchmark["throughput"]["Elements"].as_f64().unwrap_or(1.0),
    })
}

fn find<'a, T>(rows: &'a [T], name: &str, of: impl Fn(&T) -> &str) -> Result<&'a T, String> {
    rows.iter()
        .find(|row| of(row) == name)
        .ok_or_else(|| format!("no figures for {name}"))
}

/// The figures of one group, read from the target directory.
struct Group<'a> {
    target: &'a Path,
    name: &'a str,
    paired: Vec<Paired>,
}

impl<'a> Group<'a> {
    fn read(target: &'a Path, name: &'a str) -> Result<Self, String> {
        let path = report::paired_file(&target.join("tmp"), name);
        let paired = report::read_paired(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self {
            target,
            name,
            paired,
        })
    }

    fn counted(&self) -> Result<Vec<Counted>, String> {
        let path = report::counted_file(&self.target.join("tmp"), self.name);
        report::read_counted(&path).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn paired(&self, contender: &str) -> Result<&Paired, String> {
        find(&self.paired, contender, |row| &row.contender)
    }

    fn criterion(&self, contender: &str) -> Result<Estimate, String> {
        estimate(self.target, self.name, contender)
    }
}

fn ratio(r: Ratio) -> String {
    format!("{:.3} ({:.3}–{:.3})", r.median, r.q1, r.q3)
}

/// An in-memory group: time per request and its ratio to the baseline (the first contender) and to
/// `second`, interleaved and by criterion, then the counted figures.
fn in_memory(target: &Path, name: &str, contenders: &[&str], second: &str) -> Result<(), String> {
    let group = Group::read(target, name)?;
    let counted = group.counted()?;
    let baseline = contenders[0];
    let (base, other) = (group.paired(baseline)?, group.paired(second)?);
    let base_time = group.criterion(baseline)?;
    println!("### {name}\n");
    let vs_second = if second == baseline {
        String::new()
    } else {
        format!(" vs {second} (quartiles) |")
    };
    println!(
        "| contender | CPU ns/request, interleaved | vs {baseline} (quartiles) |{vs_second} CPU ns/request, criterion (95% CI) | vs {baseline} | wall ns/request, counted run | allocations/request | bytes allocated | body bytes copied | inner calls |"
    );
    let columns = if second == baseline { 10 } else { 11 };
    println!("|---{}|", "|---:".repeat(columns - 1));
    for contender in contenders {
        let paired = group.paired(contender)?;
        let time = group.criterion(contender)?;
        let row = find(&counted, contender, |row| &row.contender)?;
        let to_second = if second == baseline {
            String::new()
        } else {
            format!(" {} |", ratio(paired.ratio_to(other)))
        };
        println!(
            "| {contender} | {:.0} | {} |{to_second} {:.0} ({:.0}–{:.0}) | {:.3} | {:.0} | {:.2} | {:.0} | {:.0} | {:.0} |",
            paired.ns(),
            ratio(paired.ratio_to(base)),
            time.ns,
            time.low,
            time.high,
            time.ns / base_time.ns,
            row.wall_ns,
            row.allocations,
            row.allocated_bytes,
            row.copied_body_bytes,
            row.inner_calls
        );
    }
    println!();
    Ok(())
}

/// The loopback group: requests per second and the ratio to the bare client, interleaved and by
/// criterion. Time ratios are inverted into throughput ratios.
fn loopback(target: &Path, contenders: &[&str]) -> Result<(), String> {
    let group = Group::read(target, "loopback")?;
    let per_second = |ns_per_batch: f64, e: &Estimate| e.elements * 1e9 / ns_per_batch;
    let baseline = contenders[0];
    let base = group.paired(baseline)?;
    let base_time = group.criterion(baseline)?;
    let base_rate = per_second(base_time.ns, &base_time);
    println!("### loopback\n");
    println!(
        "| client | requests/s, interleaved | vs {baseline} (quartiles) | requests/s, criterion (95% CI) | vs {baseline} |"
    );
    println!("|---|---:|---:|---:|---:|");
    for contender in contenders {
        let paired = group.paired(contender)?;
        let time_ratio = paired.ratio_to(base);
        let throughput_ratio = Ratio {
            median: 1.0 / time_ratio.median,
            q1: 1.0 / time_ratio.q3,
            q3: 1.0 / time_ratio.q1,
        };
        let e = group.criterion(contender)?;
        let rate = per_second(e.ns, &e);
        println!(
            "| {contender} | {:.0} | {} | {:.0} ({:.0}–{:.0}) | {:.3} |",
            1e9 / paired.ns(),
            ratio(throughput_ratio),
            rate,
            per_second(e.high, &e),
            per_second(e.low, &e),
            rate / base_rate
        );
    }
    println!();
    Ok(())
}

fn run(target: &Path) -> Result<(), String> {
    in_memory(
        target,
        "success_path",
        &[
            "bare",
            "bare_with_request_copy",
            "tower_retry",
            "tower_resilience_retry",
            "tower_http_retry",
        ],
        "tower_retry",
    )?;
    in_memory(
        target,
        "retry_path",
        &["tower_retry", "tower_resilience_retry", "tower_http_retry"],
        "tower_retry",
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
