//! Rate limiters of the project's own, for the throttle: each usable in memory under tokio's paused
//! clock (tests) and as an HTTP/1.1 server on 127.0.0.1 (`examples/throttle.rs`), with a load driver
//! that measures completion, 429s, waits and attempts sent before the server's time.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};
use tower::{Service, ServiceExt};

use crate::BoxError;

/// How a limiter decides.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// `limit` requests per fixed `window` from the start; every response carries `RateLimit`,
    /// `RateLimit-Policy` and `X-RateLimit-*`, a 429 also `Retry-After` (whole seconds to the reset).
    FixedWindow {
        /// Requests per window.
        limit: u32,
        /// The window's length.
        window: Duration,
    },
    /// A token bucket (GCRA): `rate` per second, `burst` at once. With `retry_after`, a 429 carries
    /// `Retry-After` in whole seconds (at least 1); without, a 429 carries no header at all.
    TokenBucket {
        /// Tokens per second.
        rate: u32,
        /// Tokens at once.
        burst: u32,
        /// Whether a 429 carries `Retry-After`.
        retry_after: bool,
    },
}

impl Kind {
    /// Workload 1's model: nginx `limit_req` 10 r/s, no burst, `Retry-After: 1`.
    pub const NGINX: Kind = Kind::TokenBucket {
        rate: 10,
        burst: 1,
        retry_after: true,
    };
    /// Workload 2: a fixed window of 50 per 5 s with rate-limit headers.
    pub const WINDOW: Kind = Kind::FixedWindow {
        limit: 50,
        window: Duration::from_secs(5),
    };
    /// Workload 3: a token bucket of 10 per second, burst 20.
    pub const BUCKET: Kind = Kind::TokenBucket {
        rate: 10,
        burst: 20,
        retry_after: true,
    };
    /// Workload 4: bare 429s at 10 per second.
    pub const BARE: Kind = Kind::TokenBucket {
        rate: 10,
        burst: 1,
        retry_after: false,
    };

    /// The limiter's sustained rate, in requests per second.
    pub fn rate(&self) -> f64 {
        match *self {
            Kind::FixedWindow { limit, window } => f64::from(limit) / window.as_secs_f64(),
            Kind::TokenBucket { rate, .. } => f64::from(rate),
        }
    }

    /// The earliest the `i`-th request (0-based) arriving at `arrival` could complete, serving in
    /// arrival order at the limiter's capacity.
    pub fn ideal(&self, i: usize, arrival: Duration) -> Duration {
        let i = i as u32;
        let slot = match *self {
            Kind::FixedWindow { limit, window } => window * (i / limit),
            Kind::TokenBucket { rate, burst, .. } => {
                Duration::from_secs_f64(f64::from(i.saturating_sub(burst - 1)) / f64::from(rate))
            }
        };
        slot.max(arrival)
    }
}

/// One attempt as the limiter saw it.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    /// When, from the limiter's start.
    pub at: Duration,
    /// The status it got.
    pub status: u16,
    /// It arrived before a time the server had given (a `Retry-After`, or the reset of a spent quota).
    pub early: bool,
}

/// A limiter and its log.
pub struct Limiter {
    kind: Kind,
    start: Instant,
    /// GCRA: the theoretical arrival time, in nanoseconds from the start.
    tat: u128,
    window: u64,
    count: u32,
    /// The latest time the server gave a client.
    given: Option<Instant>,
    log: Vec<Seen>,
}

impl Limiter {
    /// A limiter of `kind`, starting now.
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            start: Instant::now(),
            tat: 0,
            window: 0,
            count: 0,
            given: None,
            log: Vec::new(),
        }
    }

    /// Every attempt so far, in arrival order.
    pub fn log(&self) -> &[Seen] {
        &self.log
    }

    /// Answers one request arriving now.
    pub fn answer(&mut self) -> Response<Full<Bytes>> {
        let now = Instant::now();
        let since = now.saturating_duration_since(self.start);
        let early = self.given.is_some_and(|given| now < given);
        let mut response = Response::builder();
        let (admitted, come_back) = match self.kind {
            Kind::TokenBucket {
                rate,
                burst,
                retry_after,
            } => {
                let t = since.as_nanos();
                let interval = 1_000_000_000u128 / u128::from(rate);
                let tolerance = interval * u128::from(burst - 1);
                if t + tolerance >= self.tat {
                    self.tat = self.tat.max(t) + interval;
                    (true, None)
                } else {
                    let next = Duration::from_nanos((self.tat - tolerance - t) as u64);
                    let secs = next.as_secs() + u64::from(next.subsec_nanos() > 0);
                    let secs = secs.max(1);
                    if retry_after {
                        response = response.header("retry-after", secs);
                    }
                    (false, retry_after.then(|| Duration::from_secs(secs)))
                }
            }
            Kind::FixedWindow { limit, window } => {
                let index = (since.as_nanos() / window.as_nanos()) as u64;
                if index != self.window {
                    self.window = index;
                    self.count = 0;
                }
                let admitted = self.count < limit;
                if admitted {
                    self.count += 1;
                }
                let end = window * (index as u32 + 1);
                let reset = end - since;
                let reset = reset.as_secs() + u64::from(reset.subsec_nanos() > 0);
                let remaining = limit - self.count;
                response = response
                    .header(
                        "ratelimit",
                        format!("limit={limit}, remaining={remaining}, reset={reset}"),
                    )
                    .header(
                        "ratelimit-policy",
                        format!("{limit};w={}", window.as_secs()),
                    )
                    .header("x-ratelimit-limit", limit)
                    .header("x-ratelimit-remaining", remaining)
                    .header("x-ratelimit-reset", reset);
                if !admitted {
                    response = response.header("retry-after", reset);
                }
                let spent = remaining == 0;
                (admitted, spent.then(|| Duration::from_secs(reset)))
            }
        };
        if let Some(delay) = come_back {
            let until = now + delay;
            self.given = Some(self.given.map_or(until, |given| given.max(until)));
        }
        let status = if admitted { 200 } else { 429 };
        self.log.push(Seen {
            at: since,
            status,
            early,
        });
        response
            .status(status)
            .body(Full::new(Bytes::new()))
            .expect("a valid response")
    }
}

/// A limiter as an in-memory service, answering at once.
#[derive(Clone)]
pub struct Limited(pub Arc<Mutex<Limiter>>);

impl Limited {
    /// A limiter of `kind`, starting now.
    pub fn new(kind: Kind) -> Self {
        Self(Arc::new(Mutex::new(Limiter::new(kind))))
    }

    /// A copy of every attempt so far, in arrival order.
    pub fn log(&self) -> Vec<Seen> {
        self.0.lock().unwrap().log().to_vec()
    }
}

impl<B> Service<Request<B>> for Limited {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        ready(Ok(self.0.lock().unwrap().answer()))
    }
}

/// Serves `limiter` over HTTP/1.1 on 127.0.0.1 until the returned task is aborted.
pub async fn serve(limiter: Limited) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |_: Request<hyper::body::Incoming>| {
                        let response = limiter.0.lock().unwrap().answer();
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

/// `n` arrival offsets at `per_second` (all at once when 0).
pub fn arrivals(n: usize, per_second: u32) -> Vec<Duration> {
    (0..n)
        .map(|i| match per_second {
            0 => Duration::ZERO,
            r => Duration::from_secs_f64(i as f64 / f64::from(r)),
        })
        .collect()
}

/// How one request ended.
#[derive(Clone, Debug)]
pub struct Ended {
    /// When it was sent, from the start of the run.
    pub arrival: Duration,
    /// When it ended, from the start of the run.
    pub finished: Duration,
    /// It ended in 200.
    pub ok: bool,
    /// It failed because the client shed it.
    pub shed: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Sends a GET to `uri` through `client` at each offset; returns how each ended, in arrival order.
/// `is_shed` tells a shed request's error apart (this crate cannot name tower-http-retry's `Error`).
pub async fn drive<S, B>(
    client: S,
    uri: &str,
    offsets: &[Duration],
    is_shed: fn(&BoxError) -> bool,
) -> Vec<Ended>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError> + Send,
    B: Body + Send + 'static,
{
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for (i, offset) in offsets.iter().copied().enumerate() {
        let client = client.clone();
        let uri = uri.to_owned();
        tasks.spawn(async move {
            sleep_until(start + offset).await;
            let request = Request::get(uri).body(Full::new(Bytes::new())).unwrap();
            let result = client.oneshot(request).await;
            let finished = start.elapsed();
            let (ok, shed, error) = match result {
                Ok(response) => (
                    response.status() == StatusCode::OK,
                    false,
                    (response.status() != StatusCode::OK).then(|| response.status().to_string()),
                ),
                Err(error) => {
                    let error: BoxError = error.into();
                    let shed = is_shed(&error);
                    (false, shed, Some(error.to_string()))
                }
            };
            (
                i,
                Ended {
                    arrival: offset,
                    finished,
                    ok,
                    shed,
                    error,
                },
            )
        });
    }
    let mut ended: Vec<Option<Ended>> = vec![None; offsets.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, end) = done.unwrap();
        ended[i] = Some(end);
    }
    ended.into_iter().map(Option::unwrap).collect()
}

/// The figures of one run.
#[derive(Clone, Debug)]
pub struct Figures {
    /// When the last completed request completed, over the ideal: N over the limiter's rate, or the
    /// arrival span if longer.
    pub completion: f64,
    /// 429s received over requests.
    pub throttled: f64,
    /// The longest wait of a completed request over the longest FIFO-ideal wait.
    pub longest_wait: f64,
    /// Requests that ended in 200.
    pub completed: usize,
    /// Requests the client shed.
    pub shed: usize,
    /// Attempts that arrived before a time the server had given.
    pub early: usize,
    /// Attempts the limiter saw.
    pub attempts: usize,
}

/// The figures of a run of `kind`: how its requests `ended`, and the limiter's `log`.
pub fn figures(kind: Kind, ended: &[Ended], log: &[Seen]) -> Figures {
    let n = ended.len().max(1);
    // As the issue defines it: N over the rate, or the arrival span if longer.
    let span = ended.iter().map(|e| e.arrival).max().unwrap_or_default();
    let ideal_end = Duration::from_secs_f64(ended.len() as f64 / kind.rate()).max(span);
    let mut ideal_wait = Duration::ZERO;
    for (i, e) in ended.iter().enumerate() {
        let ideal = kind.ideal(i, e.arrival);
        ideal_wait = ideal_wait.max(ideal - e.arrival);
    }
    let done = ended.iter().filter(|e| e.ok);
    let last = done.clone().map(|e| e.finished).max().unwrap_or_default();
    let longest = done
        .clone()
        .map(|e| e.finished.saturating_sub(e.arrival))
        .max()
        .unwrap_or_default();
    let secs = |d: Duration| d.as_secs_f64().max(1e-3);
    Figures {
        completion: secs(last) / secs(ideal_end),
        throttled: log.iter().filter(|s| s.status == 429).count() as f64 / n as f64,
        longest_wait: secs(longest) / secs(ideal_wait),
        completed: done.count(),
        shed: ended.iter().filter(|e| e.shed).count(),
        early: log.iter().filter(|s| s.early).count(),
        attempts: log.len(),
    }
}
