//! The in-memory workload: one request shape, and a service that answers it without a network.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::Full;
use tower::Service;

/// The request body size of every benchmark: 1 KiB.
pub const BODY_LEN: usize = 1024;

/// The ten request headers: five standard names, five custom ones, every value built at run time as a
/// client builds them (so cloning them is not free).
const HEADERS: [(&str, &str); 10] = [
    ("accept", "application/json"),
    ("accept-encoding", "identity"),
    ("authorization", "Bearer 9f86d081884c7d659a2feaa0c55ad015"),
    ("content-type", "application/json"),
    ("user-agent", "billing-worker/4.2.0"),
    ("x-request-id", "5b1f0f2e-7c43-4d2a-9a51-0c8a3c1e2f77"),
    ("x-api-version", "2024-06-01"),
    ("x-tenant", "acme-eu-west"),
    (
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ),
    ("x-client-region", "eu-west-1"),
];

/// Builds the benchmark requests: `PUT` (idempotent, so every contender would retry it) with ten
/// headers and a 1 KiB `Full<Bytes>` body that all requests share.
#[derive(Clone, Debug)]
pub struct Workload {
    uri: String,
    body: Bytes,
}

impl Workload {
    /// Requests to `uri`.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            body: Bytes::from(vec![b'x'; BODY_LEN]),
        }
    }

    /// Requests to an address no network is involved in.
    pub fn in_memory() -> Self {
        Self::new("http://api.example.com/v1/invoices/42?expand=lines")
    }

    /// The shared body; every request's body points at these bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// A fresh request, built the way a client builds one.
    pub fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = Method::PUT;
        *request.uri_mut() = self.uri.parse::<Uri>().expect("a valid URI");
        let headers = request.headers_mut();
        for (name, value) in HEADERS {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("a valid name"),
                HeaderValue::from_str(value).expect("a valid value"),
            );
        }
        request
    }

    /// The ten headers, as (name, value) pairs, for clients that take their own header types.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &'static str)> {
        HEADERS.into_iter()
    }
}

/// What the in-memory service answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Script {
    /// 200 to every request.
    AlwaysOk,
    /// 503, 503, 200, and again: every third call succeeds.
    TwoUnavailableThenOk,
}

/// Counts shared by every clone of an [`Answer`] service.
#[derive(Debug, Default)]
pub struct Counters {
    calls: AtomicUsize,
    copied_bytes: AtomicUsize,
}

impl Counters {
    /// Requests the service received.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Body bytes the service received that were not the original's bytes: copies.
    pub fn copied_bytes(&self) -> usize {
        self.copied_bytes.load(Ordering::Relaxed)
    }

    /// Starts counting again from zero.
    pub fn reset(&self) {
        self.calls.store(0, Ordering::Relaxed);
        self.copied_bytes.store(0, Ordering::Relaxed);
    }
}

/// The service every in-memory contender wraps: it reads the request body (checking that its bytes are
/// the original's, not a copy) and answers by its [`Script`] at once.
#[derive(Clone, Debug)]
pub struct Answer {
    script: Script,
    original: Bytes,
    counters: Arc<Counters>,
}

impl Answer {
    /// A service answering by `script`, whose requests carry `workload`'s body.
    pub fn new(script: Script, workload: &Workload) -> Self {
        Self {
            script,
            original: workload.body().clone(),
            counters: Arc::default(),
        }
    }

    /// The counts of this service and all its clones.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Reads the body's one frame (a `Full` yields it at once) and counts the bytes that are copies.
    fn read_body(&self, mut body: Full<Bytes>) {
        let mut cx = Context::from_waker(Waker::noop());
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
            let Ok(data) = frame.expect("Full never fails").into_data() else {
                continue;
            };
            if !std::ptr::eq(data.as_ptr(), self.original.as_ptr()) {
                self.counters
                    .copied_bytes
                    .fetch_add(data.len(), Ordering::Relaxed);
            }
        }
    }
}

/// The body of a 503: a short, static error document.
const UNAVAILABLE: &[u8] = b"{\"error\":\"unavailable\"}";

impl Service<Request<Full<Bytes>>> for Answer {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let n = self.counters.calls.fetch_add(1, Ordering::Relaxed);
        self.read_body(request.into_body());
        let (status, body) = match self.script {
            Script::TwoUnavailableThenOk if n % 3 < 2 => (
                StatusCode::SERVICE_UNAVAILABLE,
                Bytes::from_static(UNAVAILABLE),
            ),
            _ => (StatusCode::OK, Bytes::new()),
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn requests_carry_ten_headers_and_the_shared_body() {
        let workload = Workload::in_memory();
        let request = workload.request();
        assert_eq!(request.headers().len(), 10);
        assert_eq!(request.method(), Method::PUT);
        let answer = Answer::new(Script::AlwaysOk, &workload);
        let counters = answer.counters();
        let response = answer.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(counters.calls(), 1);
        assert_eq!(counters.copied_bytes(), 0);
    }

    #[tokio::test]
    async fn a_copied_body_is_counted() {
        let workload = Workload::in_memory();
        let mut answer = Answer::new(Script::AlwaysOk, &workload);
        let copy = Bytes::copy_from_slice(workload.body());
        let request = workload.request().map(|_| Full::new(copy));
        answer.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(answer.counters().copied_bytes(), BODY_LEN);
    }

    #[tokio::test]
    async fn every_third_call_succeeds() {
        let workload = Workload::in_memory();
        let mut answer = Answer::new(Script::TwoUnavailableThenOk, &workload);
        let mut statuses = Vec::new();
        for _ in 0..6 {
            let response = answer.ready().await.unwrap().call(workload.request());
            statuses.push(response.await.unwrap().status().as_u16());
        }
        assert_eq!(statuses, [503, 503, 200, 503, 503, 200]);
    }
}
