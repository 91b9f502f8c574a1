//! An HTTP/1.1 accept loop whose handlers can end their connection with a TCP reset: the way test
//! servers on 127.0.0.1 stage a connection that breaks mid-request.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Serves every connection `listener` accepts with `handle` until the task running it is aborted.
/// `handle` gets each request and its connection's reset trigger: notifying it drops the connection,
/// and with it the socket, which lingers zero seconds and so sends a reset rather than a close.
/// `on_accept` sees each socket first (to count it or set options).
pub async fn serve_resetting<H, F, B>(
    listener: TcpListener,
    on_accept: impl Fn(&tokio::net::TcpStream),
    handle: H,
) where
    H: Fn(Request<Incoming>, Arc<Notify>) -> F + Clone + Send + 'static,
    F: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        on_accept(&stream);
        // Dropping the socket then sends a reset rather than a graceful close.
        let _ = stream.set_zero_linger();
        let handle = handle.clone();
        tokio::spawn(async move {
            let abort = Arc::new(Notify::new());
            let on_reset = abort.clone();
            let service = service_fn(move |request| handle(request, on_reset.clone()));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = abort.notified() => {} // drops the connection and its socket: a TCP reset
            }
        });
    }
}
