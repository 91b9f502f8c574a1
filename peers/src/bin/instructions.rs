//! Instructions per request of every in-memory contender, counted by valgrind's callgrind: a figure that
//! does not move with the load of a shared machine, unlike time.
//!
//! ```sh
//! cargo build --release -p peer-benches --bin instructions
//! target/release/instructions                  # both paths at 2,000 and 12,000 requests
//! target/release/instructions --calls 200,1200 # quicker (CI)
//! target/release/instructions --keep DIR       # keep callgrind's files, for callgrind_annotate
//! target/release/instructions --max-success-ratio 1.02 --max-retry-ratio 1.20 # the guard (CI)
//! ```
//!
//! For each path and contender the binary runs itself twice under
//! `valgrind --tool=callgrind --toggle-collect=*measured_requests*`, sending N1 and then N2 requests.
//! Only the instructions inside `measured_requests` are counted (building the requests, the runtime and
//! the warm-up are not), and what one run has once (first-call initialisation) cancels in the
//! difference: instructions per request = (I(N2) - I(N1)) / (N2 - N1).
//!
//! The contenders and workloads are those of the `success_path` and `retry_path` benchmarks. On the
//! success path tower-http-retry runs its default policy (its budget deposit included); on the retry
//! path no contender has a retry budget (`tower::retry` and tower-resilience-retry have none, so
//! tower-http-retry runs with `no_retry_budget()`): a budget that ran dry would change the path measured.
//! On the success path `fleet_budget_on_redis` is tower-http-retry with the same default budget on a
//! Redis store (fleet mode; a redis-server of its own, the rows left out when none is installed), and
//! `fleet_budget_in_process` the same process with the budget in it: the store's task on a second
//! thread costs the counted function instructions of its own (glibc's malloc leaves its single-thread
//! fast path), so fleet mode is compared with the latter.
//! Every run checks that every request ended in 200 after the expected number of inner calls.
//!
//! The guard: `--max-success-ratio R` and `--max-retry-ratio R` make the binary fail when
//! tower-http-retry's instructions per request (the `tower_http_retry` row, not the fleet rows) over
//! `tower::retry`'s (the `tower_retry` row) are above `R` on that path.

use std::convert::Infallible;
use std::fmt::Debug;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use http::StatusCode;
use peer_benches::contenders::{
    bare_with_request_copy, clone_request, tower_http_retry, tower_resilience_retry, tower_retry,
    Req, Res,
};
use peer_benches::fleet::Fleet;
use peer_benches::inmemory::{call_all, runtime};
use peer_benches::redis_server;
use peer_benches::workload::{Answer, Script, Workload};
use tower::{Service, ServiceExt};
use tower_http_retry::backoff::Backoff;
use tower_http_retry::RetryPolicy;

/// The requests counted when none are given: enough that the difference dwarfs run-to-run noise.
const DEFAULT_CALLS: (u64, u64) = (2_000, 12_000);
/// Requests sent before the counted ones, so that the counted ones meet warm caches and grown maps.
const WARM_UP: usize = 200;
/// Requests built ahead of each counted batch, as in the timed benchmarks.
const BATCH: u64 = 256;
/// The name callgrind's `--toggle-collect` matches: instructions are counted inside it only.
const MEASURED: &str = "*measured_requests*";
/// tower-http-retry with its default budget on a Redis store (fleet mode), on the success path: the
/// store's task runs on a thread of its own, outside the counted function.
const FLEET: &str = "fleet_budget_on_redis";
/// Its baseline: the same process (a Redis store and its thread running), the budget in the process.
/// A second thread alone changes the count: glibc's malloc leaves its single-thread fast path.
const FLEET_BASELINE: &str = "fleet_budget_in_process";
/// The contender the guard watches (`--max-success-ratio`, `--max-retry-ratio`): the default policy.
const GUARDED: &str = "tower_http_retry";
/// The contender the guard compares it with, on both paths: `tower::retry`.
const REFERENCE: &str = "tower_retry";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// 200 at once.
    Success,
    /// 503, 503, 200, no wait.
    Retry,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Retry => "retry",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::Success, Self::Retry]
            .into_iter()
            .find(|path| path.name() == name)
    }

    fn script(self) -> Script {
        match self {
            Self::Success => Script::AlwaysOk,
            Self::Retry => Script::TwoUnavailableThenOk,
        }
    }

    fn calls_per_request(self) -> usize {
        match self {
            Self::Success => 1,
            Self::Retry => 3,
        }
    }

    /// The contenders of this path; the first is the floor the others are compared with.
    fn contenders(self) -> &'static [&'static str] {
        match self {
            Self::Success => &[
                "bare_with_request_copy",
                "bare",
                "tower_retry",
                "tower_resilience_retry",
                "tower_http_retry",
                FLEET_BASELINE,
                FLEET,
            ],
            Self::Retry => &[
                "hand_loop",
                "tower_retry",
                "tower_resilience_retry",
                "tower_http_retry",
            ],
        }
    }
}

/// The least a retry layer can do on the retry path: a loop that copies the request's head for each
/// attempt and calls again until the answer is not a 503. Not a retry layer (no limit, no policy); the
/// floor under them, as `bare_with_request_copy` is on the success path.
fn hand_loop(inner: Answer) -> impl Service<Req, Response = Res, Error = Infallible> {
    tower::service_fn(move |request: Req| {
        let mut inner = inner.clone();
        async move {
            loop {
                let copy = clone_request(&request);
                let response = inner.ready().await?.call(copy).await?;
                if response.status() != StatusCode::SERVICE_UNAVAILABLE {
                    return Ok(response);
                }
            }
        }
    })
}

/// Sends `requests` through `service`: the only function whose instructions callgrind counts.
#[inline(never)]
fn measured_requests<S, B>(
    runtime: &tokio::runtime::Runtime,
    service: &mut S,
    requests: Vec<Req>,
) -> usize
where
    S: Service<Req, Response = http::Response<B>>,
    S::Error: Debug,
{
    let mut failures = 0;
    call_all(runtime, service, requests, |response| {
        failures += usize::from(response.status() != StatusCode::OK);
        black_box(response);
    });
    failures
}

/// Warms `service` up, sends `calls` requests through it, and checks what the inner service saw.
fn run_with<S, B>(
    path: Scenario,
    name: &str,
    workload: &Workload,
    inner: &Answer,
    mut service: S,
    calls: u64,
) where
    S: Service<Req, Response = http::Response<B>>,
    S::Error: Debug,
{
    let runtime = runtime();
    let warm_up = (0..WARM_UP).map(|_| workload.request()).collect();
    call_all(&runtime, &mut service, warm_up, drop);
    let counters = inner.counters();
    counters.reset();
    // Built in batches outside the counted function, as the timed benchmarks build them: building them
    // all at once would leave the allocator a heap shaped unlike theirs, and bare's frees cost more.
    let mut failures = 0;
    let mut left = calls;
    while left > 0 {
        let n = left.min(BATCH);
        let requests: Vec<Req> = (0..n).map(|_| workload.request()).collect();
        failures += measured_requests(&runtime, &mut service, requests);
        left -= n;
    }
    assert_eq!(failures, 0, "{name}: every request ends in 200");
    assert_eq!(
        counters.calls(),
        calls as usize * path.calls_per_request(),
        "{name}: {} inner calls per request",
        path.calls_per_request()
    );
    assert_eq!(counters.copied_bytes(), 0, "{name}: no body byte copied");
    // Read by `count`: a future is moved a few times per call, and its size is what each move copies.
    println!("future bytes: {}", std::mem::size_of::<S::Future>());
}

/// Runs one contender: what the binary does under callgrind.
fn run(path: Scenario, name: &str, calls: u64) -> Result<(), String> {
    let workload = Workload::in_memory();
    let inner = Answer::new(path.script(), &workload);
    let service = inner.clone();
    let w = &workload;
    match (path, name) {
        (_, "bare") => run_with(path, name, w, &inner, service, calls),
        (_, "bare_with_request_copy") => run_with(
            path,
            name,
            w,
            &inner,
            bare_with_request_copy(service),
            calls,
        ),
        (_, "hand_loop") => run_with(path, name, w, &inner, hand_loop(service), calls),
        (_, "tower_retry") => run_with(path, name, w, &inner, tower_retry(service), calls),
        // Its wait between attempts is a sleep even at zero: tokio's timer runs on the retry path.
        (_, "tower_resilience_retry") => {
            let backoff = match path {
                Scenario::Success => Duration::from_millis(100),
                Scenario::Retry => Duration::ZERO,
            };
            run_with(
                path,
                name,
                w,
                &inner,
                tower_resilience_retry(service, backoff),
                calls,
            )
        }
        (_, "tower_http_retry") => {
            let policy = match path {
                Scenario::Success => RetryPolicy::default(),
                Scenario::Retry => RetryPolicy::default()
                    .backoff(Backoff::none())
                    .no_retry_budget(),
            };
            run_with(
                path,
                name,
                w,
                &inner,
                tower_http_retry(service, policy),
                calls,
            )
        }
        (Scenario::Success, FLEET | FLEET_BASELINE) => {
            // Valgrind runs one thread at a time, many times slower: the store's calls get the time
            // that takes (its deposits are the same atomic addition whether it answers or not).
            let fleet =
                Fleet::start(Duration::from_secs(10)).ok_or("redis-server is not installed")?;
            let policy = match name {
                FLEET => RetryPolicy::default().retry_budget(fleet.budget.clone()),
                _ => RetryPolicy::default(),
            };
            run_with(
                path,
                name,
                w,
                &inner,
                tower_http_retry(service, policy),
                calls,
            );
            fleet.assert_up();
        }
        _ => return Err(format!("no contender {name}")),
    }
    Ok(())
}

/// What one run of one contender under callgrind measured.
struct Run {
    /// Instructions counted inside `measured_requests`.
    instructions: u64,
    /// The size of the contender's response future.
    future_bytes: u64,
}

/// Runs one contender under callgrind.
fn count(path: Scenario, name: &str, calls: u64, keep: Option<&Path>) -> Result<Run, String> {
    let dir = keep.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let out: PathBuf = dir.join(format!(
        "callgrind.{}.{name}.{calls}.{}",
        path.name(),
        std::process::id()
    ));
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--toggle-collect={MEASURED}"))
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg("--quiet")
        .arg(&exe)
        .args(["run", path.name(), name, &calls.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("valgrind: {e} (is valgrind installed?)"))?;
    if !output.status.success() {
        return Err(format!(
            "{} {name} {calls}: valgrind {}",
            path.name(),
            output.status
        ));
    }
    let future_bytes = String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("future bytes: ")?.parse().ok())
        .ok_or_else(|| format!("{} {name}: no future size printed", path.name()))?;
    let text = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    if keep.is_none() {
        let _ = std::fs::remove_file(&out);
    }
    let instructions = text
        .lines()
        .find_map(|line| line.strip_prefix("summary:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("{}: no summary line", out.display()))?;
    Ok(Run {
        instructions,
        future_bytes,
    })
}

/// Prints one Markdown table per path; returns each path's ratio of [`GUARDED`] to [`REFERENCE`].
fn table(
    paths: &[Scenario],
    (n1, n2): (u64, u64),
    keep: Option<&Path>,
) -> Result<Vec<(Scenario, f64)>, String> {
    println!(
        "Instructions per request: (I({n2}) - I({n1})) / {}, counted by callgrind.",
        n2 - n1
    );
    let mut ratios = Vec::new();
    for &path in paths {
        let mut rows = Vec::new();
        for &name in path.contenders() {
            if [FLEET, FLEET_BASELINE].contains(&name) && !redis_server::installed() {
                continue;
            }
            let low = count(path, name, n1, keep)?;
            let high = count(path, name, n2, keep)?;
            let per = high.instructions.saturating_sub(low.instructions) as f64 / (n2 - n1) as f64;
            rows.push((name, per, high.future_bytes));
        }
        let floor = rows[0].1;
        let tower = rows
            .iter()
            .find(|(name, _, _)| *name == REFERENCE)
            .map_or(f64::NAN, |row| row.1);
        println!();
        println!(
            "{} path ({} inner calls per request):",
            path.name(),
            path.calls_per_request()
        );
        println!();
        println!(
            "| contender | instructions/request | vs tower_retry | vs {} | future bytes |",
            rows[0].0
        );
        println!("|---|---:|---:|---:|---:|");
        for &(name, per, bytes) in &rows {
            println!(
                "| {name} | {per:.0} | {:.3} | {:.3} | {bytes} |",
                per / tower,
                per / floor
            );
        }
        let per = |name: &str| rows.iter().find(|row| row.0 == name).map(|row| row.1);
        ratios.push((path, per(GUARDED).unwrap_or(f64::NAN) / tower));
        if let (Some(fleet), Some(local)) = (per(FLEET), per(FLEET_BASELINE)) {
            println!();
            println!(
                "fleet mode: {FLEET} / {FLEET_BASELINE} = {:.3} (the budget on Redis against in the process)",
                fleet / local
            );
        }
    }
    Ok(ratios)
}

/// The guard: an error naming every path whose ratio is over its limit, or was not measured.
fn check(ratios: &[(Scenario, f64)], limits: &[(Scenario, f64)]) -> Result<(), String> {
    if limits.is_empty() {
        return Ok(());
    }
    println!();
    let mut failed = Vec::new();
    for &(path, limit) in limits {
        let ratio = ratios
            .iter()
            .find(|(measured, _)| *measured == path)
            .map(|&(_, ratio)| ratio)
            .filter(|ratio| ratio.is_finite());
        let line = match ratio {
            Some(ratio) => format!(
                "{} path: {GUARDED} / {REFERENCE} = {ratio:.3}, limit {limit:.3}",
                path.name()
            ),
            None => format!(
                "{} path: {GUARDED} / {REFERENCE} not measured, limit {limit:.3}",
                path.name()
            ),
        };
        if ratio.is_some_and(|ratio| ratio <= limit) {
            println!("guard: {line}: ok");
        } else {
            println!("guard: {line}: FAILED");
            failed.push(line);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the instruction-count guard failed: {}",
            failed.join("; ")
        ))
    }
}

fn parse_calls(text: &str) -> Option<(u64, u64)> {
    let (a, b) = text.split_once(',')?;
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    (a < b).then_some((a, b))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["run", path, name, calls] => match (Scenario::parse(path), calls.parse()) {
            (Some(path), Ok(calls)) => run(path, name, calls),
            _ => Err(format!(
                "run {path} {name} {calls}: no such path, or not a count"
            )),
        },
        ref rest => {
            let mut calls = DEFAULT_CALLS;
            let mut keep = None;
            let mut paths = vec![Scenario::Success, Scenario::Retry];
            let mut limits = Vec::new();
            let mut rest = rest.iter();
            let mut error = None;
            while let Some(arg) = rest.next() {
                match (*arg, rest.next()) {
                    ("--calls", Some(value)) => match parse_calls(value) {
                        Some(pair) => calls = pair,
                        None => {
                            error = Some(format!("--calls {value}: two counts, N1,N2 with N1 < N2"))
                        }
                    },
                    ("--keep", Some(dir)) => keep = Some(PathBuf::from(dir)),
                    ("--path", Some(name)) => match Scenario::parse(name) {
                        Some(path) => paths = vec![path],
                        None => error = Some(format!("--path {name}: success or retry")),
                    },
                    (flag @ ("--max-success-ratio" | "--max-retry-ratio"), Some(value)) => {
                        let path = match flag {
                            "--max-success-ratio" => Scenario::Success,
                            _ => Scenario::Retry,
                        };
                        match value.parse::<f64>() {
                            Ok(limit) if limit > 0.0 => limits.push((path, limit)),
                            _ => error = Some(format!("{flag} {value}: a positive ratio")),
                        }
                    }
                    (other, _) => error = Some(format!("unknown argument {other}")),
                }
            }
            match error {
                Some(error) => Err(error),
                None => {
                    table(&paths, calls, keep.as_deref()).and_then(|ratios| check(&ratios, &limits))
                }
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("instructions: {error}");
            ExitCode::FAILURE
        }
    }
}
