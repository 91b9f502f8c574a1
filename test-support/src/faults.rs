//! A fault-injecting HTTP/1.1 server on 127.0.0.1 that runs a side effect per request, and a client
//! connector that refuses some connections: the ground truth for "never duplicate a side effect".
//!
//! Every request carries a test-only request id ([`REQUEST_ID`]), which is not its idempotency key. The
//! server logs every attempt it sees (the fault it drew and how it answered) and every execution of the
//! side effect. With deduplication on, a request carrying an idempotency key executes at most once per
//! key: a repeat of a finished key gets the stored answer marked as a replay, a repeat while the first
//! is still executing gets 409, and a repeat with another payload gets 422. Without it, every attempt
//! that gets past the faults before executing executes.
//!
//! Faults are drawn per attempt from a generator seeded with (seed, request id, how many attempts of
//! that request the server had seen), so each request meets the same schedule on every run, whatever
//! the interleaving.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::BoxError;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower::Service;

use crate::resetting::serve_resetting;

/// The test-only header naming the logical request an attempt belongs to.
pub const REQUEST_ID: &str = "x-request-id";
/// The header marking a replayed answer.
pub const REPLAYED: &str = "x-idempotency-replayed";

/// A fault the server injects into one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Runs the side effect (or finds it already run), then resets the connection without answering.
    ResetAfterExecuting,
    /// Answers 503 without running anything.
    UnavailableBeforeExecuting,
    /// Runs the side effect for the schedule's `slow` duration (its key stays in flight meanwhile, so a
    /// repeat gets 409) and answers after it: later than the client's per-attempt timeout.
    SlowAnswer,
    /// Answers 429 with `Retry-After: 0` without running anything.
    TooManyRequests,
    /// Answers 408 without running anything.
    RequestTimeout,
}

impl Fault {
    /// Every fault the server can inject.
    pub const ALL: [Fault; 5] = [
        Fault::ResetAfterExecuting,
        Fault::UnavailableBeforeExecuting,
        Fault::SlowAnswer,
        Fault::TooManyRequests,
        Fault::RequestTimeout,
    ];
}

/// How the server answered one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Answer {
    /// 201 after running the side effect.
    Created,
    /// 201, the stored answer of an earlier execution, marked as a replay.
    Replayed,
    /// 409 with `Retry-After: 0`: the same key is still executing.
    InFlight,
    /// 422: the key came back with another payload.
    KeyReused,
    /// 503, 429 or 408, before running anything.
    Refused(StatusCode),
    /// The connection was reset after the side effect ran (or was found to have run).
    Reset,
    /// The answer was sent after the slow execution, later than the client waits.
    Late,
}

/// One attempt as the server saw it.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// The test-only request id it carried ([`REQUEST_ID`]).
    pub request_id: u64,
    /// How many attempts of this request the server had seen before this one.
    pub nth: u32,
    /// Its idempotency key, if it carried one.
    pub key: Option<HeaderValue>,
    /// How the server answered it.
    pub answer: Answer,
    /// The [`digest`] of the body the server received.
    pub body_digest: u64,
}

/// A digest of a request body, to tell whether an attempt arrived byte-identical.
pub fn digest(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// One execution of the side effect.
#[derive(Clone, Debug)]
pub struct Execution {
    /// The test-only request id of the request it executed.
    pub request_id: u64,
    /// The idempotency key it executed under, if any.
    pub key: Option<HeaderValue>,
}

/// Which attempts fail, and how.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Seeds the draws, with the request id and the attempt number.
    pub seed: u64,
    /// The share of attempts that get a fault, from 0 to 1.
    pub rate: f64,
    /// The faults to draw from, equally likely.
    pub faults: Vec<Fault>,
    /// How long a [`Fault::SlowAnswer`] takes.
    pub slow: Duration,
}

impl Schedule {
    /// The fault of the `nth` attempt of request `id`, if it gets one.
    pub fn draw(&self, id: u64, nth: u32) -> Option<Fault> {
        let mut rng = SmallRng::seed_from_u64(mix(self.seed, id, u64::from(nth)));
        (rng.random::<f64>() < self.rate && !self.faults.is_empty())
            .then(|| self.faults[rng.random_range(0..self.faults.len())])
    }
}

/// Spreads (seed, a, b) over 64 bits, so neighbouring ids and attempts draw unrelated sequences.
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Where a key stands, with the digest of the payload it first came with (a digest, not the bytes: a
/// slice of the connection's read buffer would keep the whole buffer alive for the ledger's lifetime).
enum KeyState {
    Executing { payload: u64 },
    Done { payload: u64 },
}

#[derive(Default)]
struct Log {
    seen: HashMap<u64, u32>,
    keys: HashMap<HeaderValue, KeyState>,
    attempts: Vec<Attempt>,
    executions: Vec<Execution>,
}

struct Shared {
    schedule: Schedule,
    /// The idempotency key header the server deduplicates by; `None` runs every attempt.
    dedupe_by: Option<HeaderName>,
    log: Mutex<Log>,
}

/// A running fault server; it stops accepting when dropped.
pub struct FaultServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FaultServer {
    /// Starts a server on a free port of 127.0.0.1.
    pub async fn start(schedule: Schedule, dedupe_by: Option<HeaderName>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            schedule,
            dedupe_by,
            log: Mutex::default(),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Self {
            addr,
            shared,
            accept,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Every attempt the server saw, in the order it decided on them.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.shared.log.lock().unwrap().attempts.clone()
    }

    /// Every execution of the side effect, in order.
    pub fn executions(&self) -> Vec<Execution> {
        self.shared.log.lock().unwrap().executions.clone()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let on_accept = |stream: &TcpStream| {
        let _ = stream.set_nodelay(true);
    };
    serve_resetting(listener, on_accept, move |request, abort| {
        handle(request, shared.clone(), abort)
    })
    .await;
}

/// What to do after the decision, taken under the lock.
enum Plan {
    Answer(Response<Full<Bytes>>),
    Run { replay: bool, fault: Option<Fault> },
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
    abort: Arc<Notify>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let payload = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Some(id) = parts
        .headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return Ok(answer(StatusCode::BAD_REQUEST, false));
    };
    let key = shared
        .dedupe_by
        .as_ref()
        .and_then(|header| parts.headers.get(header))
        // An owned copy: hyper's header values are slices of the connection's read buffer, and the
        // ledger outlives the connection.
        .map(|key| HeaderValue::from_bytes(key.as_bytes()).expect("it was a header value"));

    // Everything is decided and logged before the first await, so an attempt the client abandons is
    // logged all the same.
    let plan = {
        let mut log = shared.log.lock().unwrap();
        let seen = log.seen.entry(id).or_insert(0);
        let nth = *seen;
        *seen += 1;
        let fault = shared.schedule.draw(id, nth);
        let body_digest = digest(&payload);
        let (plan, answer_kind) = decide(&mut log, fault, key.as_ref(), body_digest);
        log.attempts.push(Attempt {
            request_id: id,
            nth,
            key: key.clone(),
            answer: answer_kind,
            body_digest,
        });
        if let Plan::Run { replay: false, .. } = plan {
            log.executions.push(Execution {
                request_id: id,
                key: key.clone(),
            });
        }
        plan
    };

    let (replay, fault) = match plan {
        Plan::Answer(response) => return Ok(response),
        Plan::Run { replay, fault } => (replay, fault),
    };
    let slow = (fault == Some(Fault::SlowAnswer)).then_some(shared.schedule.slow);
    if replay {
        if let Some(slow) = slow {
            tokio::time::sleep(slow).await;
        }
    } else {
        // The side effect finishes even if the client goes away meanwhile.
        let shared = shared.clone();
        let execution = tokio::spawn(async move {
            if let Some(slow) = slow {
                tokio::time::sleep(slow).await;
            }
            if let Some(key) = key {
                let mut log = shared.log.lock().unwrap();
                if let Some(state) = log.keys.get_mut(&key)
                    && let KeyState::Executing { payload } = *state
                {
                    *state = KeyState::Done { payload };
                }
            }
        });
        let _ = execution.await;
    }
    if fault == Some(Fault::ResetAfterExecuting) {
        abort.notify_one();
        std::future::pending::<()>().await;
    }
    Ok(answer(StatusCode::CREATED, replay))
}

/// Decides an attempt: an answer before running anything, or running (or replaying) the side effect.
fn decide(
    log: &mut Log,
    fault: Option<Fault>,
    key: Option<&HeaderValue>,
    payload: u64,
) -> (Plan, Answer) {
    let refuse = |status: StatusCode| {
        let mut response = answer(status, false);
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::CONFLICT {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("0"));
        }
        response
    };
    let before = match fault {
        Some(Fault::UnavailableBeforeExecuting) => Some(StatusCode::SERVICE_UNAVAILABLE),
        Some(Fault::TooManyRequests) => Some(StatusCode::TOO_MANY_REQUESTS),
        Some(Fault::RequestTimeout) => Some(StatusCode::REQUEST_TIMEOUT),
        _ => None,
    };
    if let Some(status) = before {
        return (Plan::Answer(refuse(status)), Answer::Refused(status));
    }
    let replay = match key {
        None => false,
        Some(key) => match log.keys.get(key) {
            Some(KeyState::Executing { payload: p } | KeyState::Done { payload: p })
                if *p != payload =>
            {
                let status = StatusCode::UNPROCESSABLE_ENTITY;
                return (Plan::Answer(refuse(status)), Answer::KeyReused);
            }
            Some(KeyState::Executing { .. }) => {
                return (Plan::Answer(refuse(StatusCode::CONFLICT)), Answer::InFlight);
            }
            Some(KeyState::Done { .. }) => true,
            None => {
                log.keys
                    .insert(key.clone(), KeyState::Executing { payload });
                false
            }
        },
    };
    let kind = match fault {
        Some(Fault::ResetAfterExecuting) => Answer::Reset,
        Some(Fault::SlowAnswer) => Answer::Late,
        _ if replay => Answer::Replayed,
        _ => Answer::Created,
    };
    (Plan::Run { replay, fault }, kind)
}

fn answer(status: StatusCode, replayed: bool) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// A client connector that, on a seeded schedule per connection, dials a port where nothing listens
/// instead of the server: a genuine `ECONNREFUSED` from the kernel, so the request certainly never
/// reached the server. hyper-util reports it as a connect error.
///
/// The refused dial is made at once (a loopback refusal takes microseconds) so the failure is ready
/// when hyper-util first polls the connection: it races each new connection against the pool, and a
/// refusal that arrived later would often lose to a pooled connection coming free and go unseen.
#[derive(Clone)]
pub struct RefusingConnector {
    inner: HttpConnector,
    refusing: SocketAddr,
    seed: u64,
    rate: f64,
    connects: Arc<AtomicU64>,
    refusals: Arc<AtomicU64>,
    // Bound but never listening: holds the port so nothing else can take it, and the kernel refuses.
    _closed_port: Arc<TcpSocket>,
}

impl RefusingConnector {
    /// Refuses each new connection with probability `rate`, drawn from `seed` and the connection count.
    pub fn new(seed: u64, rate: f64) -> Self {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket
            .bind("127.0.0.1:0".parse().unwrap())
            .expect("bind 127.0.0.1");
        let refusing = socket.local_addr().expect("local address");
        let mut inner = HttpConnector::new();
        inner.set_nodelay(true);
        Self {
            inner,
            refusing,
            seed,
            rate,
            connects: Arc::default(),
            refusals: Arc::default(),
            _closed_port: Arc::new(socket),
        }
    }

    /// Connections asked for so far.
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::SeqCst)
    }

    /// Connections refused so far.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::SeqCst)
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, BoxError>> + Send>>;

impl Service<Uri> for RefusingConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Connecting {
        let n = self.connects.fetch_add(1, Ordering::SeqCst);
        let mut rng = SmallRng::seed_from_u64(mix(self.seed, u64::MAX, n));
        if rng.random::<f64>() < self.rate {
            self.refusals.fetch_add(1, Ordering::SeqCst);
            let refused = std::net::TcpStream::connect(self.refusing)
                .expect_err("nothing listens on the refusing port");
            return Box::pin(std::future::ready(Err(refused.into())));
        }
        let connecting = self.inner.call(uri);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}
