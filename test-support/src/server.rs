//! A scripted HTTP/1.1 server on 127.0.0.1, for the integration tests and the demo.
//!
//! Each path has a script: the n-th request to that path gets the n-th reply, and the last reply
//! repeats once the script runs out. Every request is recorded with its body.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// What the server does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Answers with this status, these headers and this body, after `delay`.
    Respond {
        /// The status.
        status: u16,
        /// The headers.
        headers: Vec<(&'static str, String)>,
        /// The body.
        body: Bytes,
        /// How long to wait before answering.
        delay: Duration,
    },
    /// Aborts the connection with a TCP reset, without answering.
    Reset,
    /// Reads `after` bytes of the request body (or all of a shorter one), then aborts the connection
    /// with a TCP reset, without answering.
    ResetMidBody {
        /// Bytes read before the reset.
        after: usize,
    },
    /// Sends a response head with `status`, then `prefix` of the body (maybe empty), then a few
    /// milliseconds later aborts the connection in the middle of the body.
    BodyFails {
        /// The status of the head.
        status: u16,
        /// What is sent of the body before the abort.
        prefix: Bytes,
    },
    /// Sends a response head with `status`, then `prefix` of the body, then nothing more for an hour.
    BodyStalls {
        /// The status of the head.
        status: u16,
        /// What is sent of the body before the stall.
        prefix: Bytes,
    },
    /// Sends a 200 head with `Content-Length: length`, then `prefix` of the body, then a few
    /// milliseconds later resets the connection (TCP reset): a truncated body.
    Truncated {
        /// The length the head announces.
        length: usize,
        /// What is sent of the body before the reset.
        prefix: Bytes,
    },
    /// Never answers.
    Hang,
}

impl Reply {
    /// An empty answer with `status`.
    pub fn status(status: u16) -> Self {
        Reply::Respond {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            delay: Duration::ZERO,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl ToString) -> Self {
        if let Reply::Respond { headers, .. } = &mut self {
            headers.push((name, value.to_string()));
        }
        self
    }

    /// Sets the body.
    pub fn body(mut self, bytes: impl Into<Bytes>) -> Self {
        if let Reply::Respond { body, .. } = &mut self {
            *body = bytes.into();
        }
        self
    }

    /// Answers only after `wait`.
    pub fn after(mut self, wait: Duration) -> Self {
        if let Reply::Respond { delay, .. } = &mut self {
            *delay = wait;
        }
        self
    }
}

/// A request as the server received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The request's method.
    pub method: Method,
    /// The request's path.
    pub path: String,
    /// The request's headers.
    pub headers: HeaderMap,
    /// The request's body, collected.
    pub body: Bytes,
}

#[derive(Default)]
struct Shared {
    scripts: HashMap<String, Vec<Reply>>,
    served: HashMap<String, usize>,
    received: Vec<Received>,
}

/// A running scripted server; it stops accepting when dropped.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    connections: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Server {
    /// Starts a server on a free port of 127.0.0.1 with one script per path.
    pub async fn start<P: Into<String>>(
        scripts: impl IntoIterator<Item = (P, Vec<Reply>)>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        Self::serve(listener, scripts)
    }

    /// Starts a server on a given address (to bring up a port that refused connections before).
    pub async fn start_on<P: Into<String>>(
        addr: SocketAddr,
        scripts: impl IntoIterator<Item = (P, Vec<Reply>)>,
    ) -> Self {
        let listener = TcpListener::bind(addr)
            .await
            .expect("bind the given address");
        Self::serve(listener, scripts)
    }

    fn serve<P: Into<String>>(
        listener: TcpListener,
        scripts: impl IntoIterator<Item = (P, Vec<Reply>)>,
    ) -> Self {
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Mutex::new(Shared {
            scripts: scripts.into_iter().map(|(p, s)| (p.into(), s)).collect(),
            ..Shared::default()
        }));
        let connections = Arc::new(AtomicUsize::new(0));
        let (counted, handled) = (connections.clone(), shared.clone());
        let accept = tokio::spawn(crate::resetting::serve_resetting(
            listener,
            move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
            },
            move |request, abort| handle(request, handled.clone(), abort),
        ));
        Self {
            addr,
            shared,
            connections,
            accept,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }

    /// How many requests reached `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.shared
            .lock()
            .unwrap()
            .served
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// How many TCP connections were accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Mutex<Shared>>,
    abort: Arc<Notify>,
) -> Result<Response<ServerBody>, Infallible> {
    let (parts, mut incoming) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let reply = {
        let mut shared = shared.lock().unwrap();
        let n = shared.served.entry(path.clone()).or_insert(0);
        let index = *n;
        *n += 1;
        match shared.scripts.get(&path) {
            Some(script) if !script.is_empty() => script[index.min(script.len() - 1)].clone(),
            _ => Reply::status(404),
        }
    };
    // Read the whole body, or only its first bytes when the reply is to break off in the middle.
    let stop_after = match &reply {
        Reply::ResetMidBody { after } => *after,
        _ => usize::MAX,
    };
    let mut body = Vec::new();
    while body.len() < stop_after {
        match incoming.frame().await {
            Some(Ok(frame)) => body.extend_from_slice(frame.data_ref().map_or(&[][..], |d| &d[..])),
            _ => break,
        }
    }
    shared.lock().unwrap().received.push(Received {
        method: parts.method,
        path,
        headers: parts.headers,
        body: body.into(),
    });
    let reply_kind = match &reply {
        Reply::BodyStalls { .. } => ReplyKind::Stalls,
        _ => ReplyKind::Other,
    };
    match reply {
        Reply::Respond {
            status,
            headers,
            body,
            delay,
        } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut response = Response::new(Full::new(body).map_err(|e| match e {}).boxed());
            *response.status_mut() = StatusCode::from_u16(status).expect("a valid status");
            for (name, value) in headers {
                response
                    .headers_mut()
                    .append(name, value.parse().expect("a valid header value"));
            }
            Ok(response)
        }
        Reply::Reset | Reply::ResetMidBody { .. } => {
            abort.notify_one();
            std::future::pending().await
        }
        Reply::Hang => std::future::pending().await,
        Reply::Truncated { length, prefix } => {
            let body = PrefixThen {
                prefix: Some(prefix),
                at: Box::pin(tokio::time::sleep(Duration::from_millis(5))),
                then: Then::Reset(abort),
            };
            let mut response = Response::new(body.boxed());
            response
                .headers_mut()
                .insert("content-length", length.to_string().parse().unwrap());
            Ok(response)
        }
        Reply::BodyFails { status, prefix } | Reply::BodyStalls { status, prefix } => {
            let stall = matches!(reply_kind, ReplyKind::Stalls);
            let fail_after = if stall {
                Duration::from_secs(3600)
            } else {
                Duration::from_millis(5)
            };
            let body = PrefixThen {
                prefix: (!prefix.is_empty()).then_some(prefix),
                at: Box::pin(tokio::time::sleep(fail_after)),
                then: Then::Fail,
            };
            let mut response = Response::new(body.boxed());
            *response.status_mut() = StatusCode::from_u16(status).expect("a valid status");
            Ok(response)
        }
    }
}

/// Whether a body reply stalls rather than fails.
enum ReplyKind {
    Stalls,
    Other,
}

type ServerBody = BoxBody<Bytes, std::io::Error>;

/// A body that sends its prefix, then, a moment later (once hyper has flushed it), ends as `then`
/// says.
struct PrefixThen {
    prefix: Option<Bytes>,
    at: std::pin::Pin<Box<tokio::time::Sleep>>,
    then: Then,
}

/// How a [`PrefixThen`] body ends.
enum Then {
    /// Its frame is an error (hyper aborts the message).
    Fail,
    /// The connection is reset (the serving task is told to drop it); no more frames.
    Reset(Arc<Notify>),
}

impl http_body::Body for PrefixThen {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        if let Some(prefix) = self.prefix.take() {
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(prefix))));
        }
        std::task::ready!(self.at.as_mut().poll(cx));
        match &self.then {
            Then::Fail => {
                let error =
                    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "scripted abort");
                std::task::Poll::Ready(Some(Err(error)))
            }
            Then::Reset(abort) => {
                abort.notify_one();
                std::task::Poll::Pending
            }
        }
    }
}
