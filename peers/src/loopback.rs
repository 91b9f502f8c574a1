//! The loopback benchmark: a hyper HTTP/1.1 server on 127.0.0.1 and the clients that call it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower::{Service, ServiceExt};
use tower_http_retry::{Retry, RetryLayer, RetryPolicy};

use crate::contenders::{tower_retry, HttpPolicy};
use crate::workload::{Workload, BODY_LEN};

/// The server's answer to every request.
const OK_BODY: &[u8] = b"{\"ok\":true}";

/// A hyper HTTP/1.1 server on 127.0.0.1, on its own thread and runtime, that reads each request body
/// and answers 200 with a short body. Stopped when dropped.
pub struct Server {
    addr: SocketAddr,
    served: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds a free port on 127.0.0.1 and starts serving.
    pub fn start() -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let served = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = oneshot::channel();
        let counter = served.clone();
        let thread = std::thread::Builder::new()
            .name("loopback-server".into())
            .spawn(move || serve(listener, counter, stopped))?;
        Ok(Self {
            addr,
            served,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The URI of the benchmark resource on this server.
    pub fn uri(&self) -> String {
        format!("http://{}/v1/invoices/42?expand=lines", self.addr)
    }

    /// Requests answered so far.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    listener: std::net::TcpListener,
    served: Arc<AtomicUsize>,
    mut stopped: oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a server runtime");
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener).expect("a tokio listener");
        loop {
            let stream = tokio::select! {
                _ = &mut stopped => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            let _ = stream.set_nodelay(true);
            let served = served.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let served = served.clone();
                async move {
                    let body = request.into_body().collect().await?.to_bytes();
                    served.fetch_add(1, Ordering::Relaxed);
                    let status = if body.len() == BODY_LEN {
                        StatusCode::OK
                    } else {
                        StatusCode::BAD_REQUEST
                    };
                    let mut response = Response::new(Full::new(Bytes::from_static(OK_BODY)));
                    *response.status_mut() = status;
                    Ok::<_, hyper::Error>(response)
                }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
}

/// hyper-util's legacy client over plain TCP, with `TCP_NODELAY` as reqwest sets it.
pub type HyperClient = Client<HttpConnector, Full<Bytes>>;

/// The bare client.
pub fn hyper_client() -> HyperClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// The bare client behind `tower::retry` with the hand-written [`HttpPolicy`].
pub fn tower_retry_client() -> tower::retry::Retry<HttpPolicy, HyperClient> {
    tower_retry(hyper_client())
}

/// The bare client behind tower-http-retry's default policy.
pub fn tower_http_retry_client() -> Retry<HyperClient> {
    tower::Layer::layer(&RetryLayer::new(RetryPolicy::default()), hyper_client())
}

/// reqwest without TLS, without proxies.
pub fn reqwest_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client")
}

/// reqwest behind reqwest-middleware and reqwest-retry's transient-error middleware (exponential
/// backoff, 3 retries: 4 attempts, like tower-http-retry's default).
pub fn reqwest_retry_client() -> reqwest_middleware::ClientWithMiddleware {
    let policy = reqwest_retry::policies::ExponentialBackoff::builder().build_with_max_retries(3);
    reqwest_middleware::ClientBuilder::new(reqwest_client())
        .with(reqwest_retry::RetryTransientMiddleware::new_with_policy(
            policy,
        ))
        .build()
}

/// One request through a tower HTTP client (bare hyper-util or wrapped), its response read to the end.
pub async fn send_tower<S, B>(client: &mut S, workload: &Workload)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
    S::Error: std::fmt::Debug,
{
    let request = workload.request();
    let response = client
        .ready()
        .await
        .expect("ready")
        .call(request)
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.expect("a body");
    assert_eq!(body.to_bytes().len(), OK_BODY.len());
}

/// One request through reqwest, built from the same parts.
pub async fn send_reqwest(client: &reqwest::Client, workload: &Workload) {
    let (head, body) = workload.request().into_parts();
    let body = body.collect().await.expect("Full never fails").to_bytes();
    let response = client
        .request(head.method, head.uri.to_string())
        .headers(head.headers)
        .body(body)
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.expect("a body").len(), OK_BODY.len());
}

/// One request through reqwest-middleware, built from the same parts.
pub async fn send_reqwest_middleware(
    client: &reqwest_middleware::ClientWithMiddleware,
    workload: &Workload,
) {
    let (head, body) = workload.request().into_parts();
    let body = body.collect().await.expect("Full never fails").to_bytes();
    let response = client
        .request(head.method, head.uri.to_string())
        .headers(head.headers)
        .body(body)
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.expect("a body").len(), OK_BODY.len());
}

/// Sends `requests` requests with `in_flight` of them outstanding at any time: `in_flight` tasks, each
/// sending its share one after the other on its own clone of `client`.
pub async fn drive<C, F, Fut>(
    client: &C,
    workload: &Workload,
    requests: usize,
    in_flight: usize,
    send: F,
) where
    C: Clone + Send + 'static,
    F: Fn(C, Workload, usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..in_flight {
        let share = requests / in_flight + usize::from(task < requests % in_flight);
        tasks.spawn(send(client.clone(), workload.clone(), share));
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a client task");
    }
}

/// A client runtime: one thread, the server has the other core.
pub fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a client runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_gets_its_answers_from_the_server() {
        let server = Server::start().unwrap();
        let workload = Workload::new(server.uri());
        let runtime = client_runtime();
        runtime.block_on(async {
            let hyper = hyper_client();
            drive(&hyper, &workload, 10, 4, |mut c, w, n| async move {
                for _ in 0..n {
                    send_tower(&mut c, &w).await;
                }
            })
            .await;
            let tower = tower_retry_client();
            drive(&tower, &workload, 10, 4, |mut c, w, n| async move {
                for _ in 0..n {
                    send_tower(&mut c, &w).await;
                }
            })
            .await;
            let ours = tower_http_retry_client();
            drive(&ours, &workload, 10, 4, |mut c, w, n| async move {
                for _ in 0..n {
                    send_tower(&mut c, &w).await;
                }
            })
            .await;
            let reqwest = reqwest_client();
            drive(&reqwest, &workload, 10, 4, |c, w, n| async move {
                for _ in 0..n {
                    send_reqwest(&c, &w).await;
                }
            })
            .await;
            let middleware = reqwest_retry_client();
            drive(&middleware, &workload, 10, 4, |c, w, n| async move {
                for _ in 0..n {
                    send_reqwest_middleware(&c, &w).await;
                }
            })
            .await;
        });
        assert_eq!(server.served(), 50);
    }
}
