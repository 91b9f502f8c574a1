//! What one attempt produced, as the [`RetryHistory`](crate::RetryHistory) and its checks record it.

use http::StatusCode;

use crate::classify::ErrorKind;

/// What an attempt produced.
///
/// ```
/// use std::io;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use http::{Request, Response, StatusCode};
/// use tower::{service_fn, ServiceExt};
/// use tower_http_retry::classify::ErrorKind;
/// use tower_http_retry::history::AttemptOutcome;
/// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// // The connection is reset once, then the server answers.
/// let reset = Arc::new(AtomicBool::new(true));
/// let server = service_fn(move |_: Request<String>| {
///     let reset = reset.swap(false, Ordering::SeqCst);
///     async move {
///         match reset {
///             true => Err(io::Error::from(io::ErrorKind::ConnectionReset)),
///             false => Ok(Response::new(String::new())),
///         }
///     }
/// });
/// let client = Retry::new(server, RetryPolicy::default());
/// let response = client.oneshot(Request::new(String::new())).await.unwrap();
///
/// let history = response.extensions().get::<RetryHistory>().unwrap();
/// let outcomes: Vec<_> = history.attempts().iter().map(|a| a.outcome).collect();
/// let reset = AttemptOutcome::Error(ErrorKind::Reset);
/// assert_eq!(outcomes, [reset, AttemptOutcome::Status(StatusCode::OK)]);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// A response with this status.
    Status(StatusCode),
    /// A failure of this kind.
    Error(ErrorKind),
    /// A gRPC response with this code ([`RetryPolicy::grpc`](crate::RetryPolicy::grpc)): its
    /// `grpc-status`, or the code a proxy's HTTP error status maps to.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    Grpc(crate::classify::grpc::GrpcCode),
    /// The call's deadline passed before the attempt finished; it was canceled.
    Interrupted,
}

impl AttemptOutcome {
    /// OpenTelemetry's `error.type` for the outcome: the status code, the failure's kind, the
    /// gRPC code's name, or `interrupted`.
    pub(crate) fn error_type(&self) -> &str {
        match self {
            AttemptOutcome::Status(status) => status.as_str(),
            AttemptOutcome::Error(kind) => kind.as_str(),
            #[cfg(feature = "grpc")]
            AttemptOutcome::Grpc(code) => code.as_str(),
            AttemptOutcome::Interrupted => "interrupted",
        }
    }
}
