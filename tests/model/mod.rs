//! An in-memory server model and a load driver, for storm simulations under tokio's paused clock.
//!
//! The model answers at once (no latency), from a seeded random source, and logs every attempt it
//! receives. The driver starts requests at given offsets through a retry layer and collects, for each,
//! how many attempts it took and how it ended. Shared by `tests/storm.rs` and `examples/storm.rs`.
//! It drives the crate's `RetryLayer`, so it stays with the tests rather than in `retry-test-support`.

#![allow(dead_code)] // still a shared file: the storm test and example each use a different part

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http_retry::history::StopReason;
use tower_http_retry::{RetryHistory, RetryLayer};

/// The header carrying a request's number, so the model can count its attempts.
const REQUEST_ID: &str = "x-request";

/// How the modelled server answers.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Every attempt fails with 503 with this probability, independently.
    FailRate(f64),
    /// Every request's first attempt fails with 503; later attempts succeed.
    FirstAttemptFails,
    /// Admits `per_second` requests per second (fixed windows of 1 s from the start). The rest get a
    /// 429 with `Retry-After` (whole seconds to the next window). With `advertise`, every response
    /// also carries `RateLimit` and `RateLimit-Policy`, so the one that spends the quota says so.
    RateLimited { per_second: u32, advertise: bool },
}

/// One attempt, as the server received it.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    /// When, from the model's creation.
    pub at: Duration,
    pub request: u64,
    /// 1 for a request's first attempt.
    pub attempt: u32,
    pub status: u16,
}

/// The modelled server; clones share its state.
#[derive(Clone)]
pub struct Model {
    state: Arc<Mutex<State>>,
}

struct State {
    behaviour: Behaviour,
    rng: SmallRng,
    started: Instant,
    window: u64,
    admitted: u32,
    attempts: HashMap<u64, u32>,
    log: Vec<Arrival>,
}

impl Model {
    /// A server behaving as `behaviour`, its randomness seeded by `seed`. Create it inside the runtime
    /// whose clock it should read.
    pub fn new(behaviour: Behaviour, seed: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                behaviour,
                rng: SmallRng::seed_from_u64(seed),
                started: Instant::now(),
                window: 0,
                admitted: 0,
                attempts: HashMap::new(),
                log: Vec::new(),
            })),
        }
    }

    /// Every attempt received, in order.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.state.lock().unwrap().log.clone()
    }

    /// How many responses had this status.
    pub fn count(&self, status: u16) -> usize {
        let state = self.state.lock().unwrap();
        state.log.iter().filter(|a| a.status == status).count()
    }

    /// When each retry (every attempt after a request's first) arrived.
    pub fn retry_times(&self) -> Vec<Duration> {
        let state = self.state.lock().unwrap();
        state
            .log
            .iter()
            .filter(|a| a.attempt > 1)
            .map(|a| a.at)
            .collect()
    }
}

impl State {
    fn answer(&mut self, request: u64) -> Response<Full<Bytes>> {
        let elapsed = self.started.elapsed();
        let attempt = {
            let n = self.attempts.entry(request).or_insert(0);
            *n += 1;
            *n
        };
        let mut response = Response::new(Full::new(Bytes::new()));
        let status = match self.behaviour {
            Behaviour::FailRate(p) => {
                if self.rng.random_bool(p.clamp(0.0, 1.0)) {
                    503
                } else {
                    200
                }
            }
            Behaviour::FirstAttemptFails => {
                if attempt == 1 {
                    503
                } else {
                    200
                }
            }
            Behaviour::RateLimited {
                per_second,
                advertise,
            } => {
                let window = elapsed.as_secs();
                if window != self.window {
                    self.window = window;
                    self.admitted = 0;
                }
                // Whole seconds until the next window, rounded up.
                let reset = (Duration::from_secs(window + 1) - elapsed)
                    .as_secs_f64()
                    .ceil() as u64;
                let admitted = self.admitted < per_second;
                if admitted {
                    self.admitted += 1;
                }
                let remaining = per_second - self.admitted;
                let headers = response.headers_mut();
                if advertise {
                    headers.insert(
                        "ratelimit",
                        format!("\"default\";r={remaining};t={reset}")
                            .parse()
                            .unwrap(),
                    );
                    headers.insert(
                        "ratelimit-policy",
                        format!("\"default\";q={per_second};w=1").parse().unwrap(),
                    );
                }
                if admitted {
                    200
                } else {
                    headers.insert("retry-after", reset.into());
                    429
                }
            }
        };
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        self.log.push(Arrival {
            at: elapsed,
            request,
            attempt,
            status,
        });
        response
    }
}

impl Service<Request<Full<Bytes>>> for Model {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let id = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(u64::MAX);
        ready(Ok(self.state.lock().unwrap().answer(id)))
    }
}

/// How one request ended.
#[derive(Clone, Copy, Debug)]
pub struct Ended {
    pub attempts: u32,
    /// The final status; `None` for an error.
    pub status: Option<u16>,
    /// Why the layer stopped; `None` when it had no decision to make.
    pub stop: Option<StopReason>,
}

impl Ended {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Sends one request at each offset in `starts` (from now) to `model` through `layer`, each from its
/// own task, and waits for all of them. Results are in the order of `starts`.
pub async fn drive(layer: RetryLayer, model: &Model, starts: &[Duration]) -> Vec<Ended> {
    let service = ServiceBuilder::new().layer(layer).service(model.clone());
    let origin = Instant::now();
    let mut tasks = JoinSet::new();
    for (id, start) in starts.iter().enumerate() {
        let service = service.clone();
        let at = origin + *start;
        tasks.spawn(async move {
            sleep_until(at).await;
            let request = Request::get("http://api.test/items")
                .header(REQUEST_ID, id)
                .body(Full::default())
                .unwrap();
            let ended = match service.oneshot(request).await {
                Ok(response) => {
                    // No history: one attempt, nothing to decide.
                    let history = response.extensions().get::<RetryHistory>();
                    Ended {
                        attempts: history.map_or(1, RetryHistory::attempt_count),
                        status: Some(response.status().as_u16()),
                        stop: history.map(RetryHistory::stop_reason),
                    }
                }
                Err(error) => Ended {
                    attempts: error.history().attempt_count(),
                    status: None,
                    stop: Some(error.history().stop_reason()),
                },
            };
            (id, ended)
        });
    }
    let mut ended = vec![
        Ended {
            attempts: 0,
            status: None,
            stop: None,
        };
        starts.len()
    ];
    while let Some(result) = tasks.join_next().await {
        let (id, e) = result.expect("a request task panicked");
        ended[id] = e;
    }
    ended
}

/// `n` offsets evenly spread over `span`, the first at 0.
pub fn spread(n: usize, span: Duration) -> Vec<Duration> {
    (0..n).map(|i| span * i as u32 / n as u32).collect()
}

/// Attempts per request, on average.
pub fn attempts_per_request(ended: &[Ended]) -> f64 {
    let total: u64 = ended.iter().map(|e| u64::from(e.attempts)).sum();
    total as f64 / ended.len() as f64
}

/// The most `times` that fall in any window of length `window` (a sliding window), over the mean per
/// window across the span from 0 to the last time. 0 without times.
pub fn busiest_over_mean(times: &[Duration], window: Duration) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort();
    let Some(last) = sorted.last().copied() else {
        return 0.0;
    };
    let mut busiest = 0;
    let mut first = 0;
    for (i, t) in sorted.iter().enumerate() {
        while *t - sorted[first] >= window {
            first += 1;
        }
        busiest = busiest.max(i + 1 - first);
    }
    let windows = (last.as_secs_f64() / window.as_secs_f64()).max(1.0);
    let mean = sorted.len() as f64 / windows;
    busiest as f64 / mean
}
