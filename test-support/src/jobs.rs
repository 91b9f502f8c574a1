//! A transcription API that does NOT deduplicate creates, as the guidance describes it: `POST
//! /v1/transcriptions` creates a job every time it is received (the key travels in the JSON body as
//! `metadata.idempotency_key`, and the server ignores it), `GET /v1/transcriptions?limit=20` lists the
//! latest jobs, `GET /v1/transcriptions/{id}` returns one. A script of faults decides what each create
//! does after (or before) the job exists: answer, time out, reset the connection, answer 503.
//!
//! One implementation, two transports: `JobsApi` is an in-memory `Service` (for tests on tokio's paused
//! clock) and `JobsApi::serve` runs it as an HTTP/1.1 server on 127.0.0.1 (for tests over real sockets).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use crate::BoxError;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::Service;

/// What one create does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    /// Creates the job and answers 201.
    Accept,
    /// Creates the job, then never answers (the client times out).
    AcceptThenHang,
    /// Creates the job, then resets the connection without answering.
    AcceptThenReset,
    /// Creates the job, then answers 503 (a gateway that lost the upstream's answer).
    AcceptThen503,
    /// Resets the connection before creating anything.
    ResetBefore,
}

/// A created job.
#[derive(Clone, Debug)]
pub struct Job {
    /// Its id, as the API returns it.
    pub id: String,
    /// The idempotency key the create carried, if any.
    pub key: Option<String>,
}

#[derive(Default)]
struct State {
    jobs: Vec<Job>,
    creates: VecDeque<Create>,
    posts: usize,
    lists: usize,
}

/// The API; clones share its jobs and its script of faults.
#[derive(Clone, Default)]
pub struct JobsApi {
    state: Arc<Mutex<State>>,
}

/// What the transport does with a request.
enum Action {
    Respond(Response<Full<Bytes>>),
    Hang,
    Reset,
}

impl JobsApi {
    /// An API whose n-th create does the n-th thing of `creates` (then `Accept`).
    pub fn new(creates: impl IntoIterator<Item = Create>) -> Self {
        let api = Self::default();
        api.state.lock().unwrap().creates = creates.into_iter().collect();
        api
    }

    /// Every job created, in order.
    pub fn jobs(&self) -> Vec<Job> {
        self.state.lock().unwrap().jobs.clone()
    }

    /// How many creates were received, and how many listings.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap();
        (state.posts, state.lists)
    }

    fn handle(&self, method: &Method, path_and_query: &str, body: &[u8]) -> Action {
        let mut state = self.state.lock().unwrap();
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        match (method, path) {
            (&Method::POST, "/v1/transcriptions") => {
                state.posts += 1;
                let create = state.creates.pop_front().unwrap_or(Create::Accept);
                if create == Create::ResetBefore {
                    return Action::Reset;
                }
                let key = serde_json::from_slice::<serde_json::Value>(body)
                    .ok()
                    .and_then(|json| {
                        json["metadata"]["idempotency_key"]
                            .as_str()
                            .map(String::from)
                    });
                let job = Job {
                    id: format!("tr_{}", state.jobs.len() + 1),
                    key,
                };
                state.jobs.push(job.clone());
                match create {
                    Create::Accept => Action::Respond(json(StatusCode::CREATED, job_json(&job))),
                    Create::AcceptThenHang => Action::Hang,
                    Create::AcceptThenReset | Create::ResetBefore => Action::Reset,
                    Create::AcceptThen503 => {
                        Action::Respond(json(StatusCode::SERVICE_UNAVAILABLE, "{}".into()))
                    }
                }
            }
            (&Method::GET, "/v1/transcriptions") => {
                state.lists += 1;
                let limit = query
                    .strip_prefix("limit=")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(20);
                let rows: Vec<String> = state.jobs.iter().rev().take(limit).map(job_json).collect();
                Action::Respond(json(
                    StatusCode::OK,
                    format!(r#"{{"data":[{}]}}"#, rows.join(",")),
                ))
            }
            (&Method::GET, path) => {
                let id = path.strip_prefix("/v1/transcriptions/").unwrap_or("");
                match state.jobs.iter().find(|job| job.id == id) {
                    Some(job) => Action::Respond(json(StatusCode::OK, job_json(job))),
                    None => Action::Respond(json(StatusCode::NOT_FOUND, "{}".into())),
                }
            }
            _ => Action::Respond(json(StatusCode::NOT_FOUND, "{}".into())),
        }
    }

    /// Serves the API over HTTP/1.1 on a free port of 127.0.0.1; returns its address.
    pub async fn serve(&self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let api = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Dropping the socket then sends a reset rather than a graceful close.
                let _ = stream.set_zero_linger();
                let api = api.clone();
                tokio::spawn(async move {
                    let abort = Arc::new(Notify::new());
                    let on_reset = abort.clone();
                    let service = hyper::service::service_fn(
                        move |request: Request<hyper::body::Incoming>| {
                            let (api, on_reset) = (api.clone(), on_reset.clone());
                            async move {
                                let (parts, body) = request.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                                match api.handle(&parts.method, target, &body) {
                                    Action::Respond(response) => Ok::<_, Infallible>(response),
                                    Action::Hang => std::future::pending().await,
                                    Action::Reset => {
                                        on_reset.notify_one();
                                        std::future::pending().await
                                    }
                                }
                            }
                        },
                    );
                    let connection =
                        http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        _ = abort.notified() => {} // drops the socket: a TCP reset
                    }
                });
            }
        });
        addr
    }
}

fn job_json(job: &Job) -> String {
    let key = job
        .key
        .as_deref()
        .map_or("null".to_owned(), |k| format!("\"{k}\""));
    format!(
        r#"{{"id":"{}","status":"queued","metadata":{{"idempotency_key":{key}}}}}"#,
        job.id
    )
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, BoxError>> + Send>>;

/// In memory: a reset is an I/O error, a hang never completes.
impl Service<Request<Full<Bytes>>> for JobsApi {
    type Response = Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> BoxFuture {
        let api = self.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let target = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            match api.handle(&parts.method, &target, &body) {
                Action::Respond(response) => Ok(response),
                Action::Hang => std::future::pending().await,
                Action::Reset => Err(io::Error::from(io::ErrorKind::ConnectionReset).into()),
            }
        })
    }
}
