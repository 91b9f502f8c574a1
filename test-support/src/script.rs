//! An in-memory scripted `Service`, for tests that run under tokio's paused clock.
//!
//! Each call takes the next step of the script (the last step repeats) and records when it was made,
//! by tokio's clock, so tests can assert exact waits.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::BoxError;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use tokio::time::Instant;
use tower::Service;

/// One scripted outcome.
#[derive(Clone, Debug)]
pub enum Step {
    /// A response with this status and these headers.
    Respond(u16, Vec<(&'static str, String)>),
    /// A response with this status and this body.
    Body(u16, Bytes),
    /// A response, after `Duration`.
    Slow(Duration, u16),
    /// A failure with this I/O error kind.
    Fail(io::ErrorKind),
    /// Never completes.
    Hang,
}

/// A response with `status` and no headers.
pub fn status(code: u16) -> Step {
    Step::Respond(code, Vec::new())
}

/// A response with `status` and one header.
pub fn with_header(code: u16, name: &'static str, value: impl ToString) -> Step {
    Step::Respond(code, vec![(name, value.to_string())])
}

/// A response with `status` and `body`.
pub fn with_body(code: u16, body: &'static str) -> Step {
    Step::Body(code, Bytes::from_static(body.as_bytes()))
}

/// A call as the service saw it.
#[derive(Clone, Debug)]
pub struct Call {
    /// When, by tokio's clock.
    pub at: Instant,
    /// The request's headers.
    pub headers: HeaderMap,
    /// The request's body, collected.
    pub body: Bytes,
}

/// The scripted service; clones share the script and the record of calls.
#[derive(Clone)]
pub struct Script {
    steps: Arc<Mutex<VecDeque<Step>>>,
    calls: Arc<Mutex<Vec<Call>>>,
    started: Instant,
}

impl Script {
    /// A service that takes `steps` in order, repeating the last.
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            steps: Arc::new(Mutex::new(steps.into_iter().collect())),
            calls: Arc::default(),
            started: Instant::now(),
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// When each call was made, measured from the script's creation.
    pub fn call_times(&self) -> Vec<Duration> {
        let calls = self.calls.lock().unwrap();
        calls.iter().map(|c| c.at - self.started).collect()
    }

    fn next_step(&self) -> Step {
        let mut steps = self.steps.lock().unwrap();
        if steps.len() > 1 {
            steps.pop_front().unwrap()
        } else {
            steps.front().cloned().unwrap_or_else(|| status(200))
        }
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, BoxError>> + Send>>;

impl Service<Request<Full<Bytes>>> for Script {
    type Response = Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> BoxFuture {
        let (parts, body) = request.into_parts();
        let body = futures_body(body);
        self.calls.lock().unwrap().push(Call {
            at: Instant::now(),
            headers: parts.headers,
            body,
        });
        let step = self.next_step();
        Box::pin(async move {
            match step {
                Step::Respond(code, headers) => Ok(response(code, headers)),
                Step::Body(code, body) => {
                    let mut response = response(code, Vec::new());
                    *response.body_mut() = Full::new(body);
                    Ok(response)
                }
                Step::Slow(delay, code) => {
                    tokio::time::sleep(delay).await;
                    Ok(response(code, Vec::new()))
                }
                Step::Fail(kind) => Err(io::Error::new(kind, "scripted failure").into()),
                Step::Hang => std::future::pending().await,
            }
        })
    }
}

fn response(code: u16, headers: Vec<(&'static str, String)>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::from_u16(code).unwrap();
    for (name, value) in headers {
        response.headers_mut().append(name, value.parse().unwrap());
    }
    response
}

/// The bytes of a `Full` body, read synchronously (a `Full` yields its one frame at once).
fn futures_body(body: Full<Bytes>) -> Bytes {
    use http_body::Body;
    let mut body = std::pin::pin!(body);
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    match body.as_mut().poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}
