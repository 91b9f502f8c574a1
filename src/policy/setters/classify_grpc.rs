//! gRPC: retrying by `grpc-status` and the service config's retry policy.

use std::sync::Arc;

use crate::classify::grpc::GrpcPolicy;
use crate::policy::retry_policy::RetryPolicy;

/// What to retry for gRPC: the `grpc-status` codes, and the server's pushback.
impl RetryPolicy {
    /// Judges responses as gRPC responses: by their `grpc-status` (the code a trailers-only response
    /// carries in its head) and `grpc` codes, honouring `grpc-retry-pushback-ms` to the millisecond, and
    /// marking every retry with `grpc-previous-rpc-attempts`. A `grpc-timeout` on the request is a
    /// deadline for the whole call (the shorter of it and [`deadline`](RetryPolicy::deadline)), and each
    /// retry carries the time left. Transport errors keep the default rules: a call is retried after a
    /// failure only when it never left (a connect error, HTTP/2 REFUSED_STREAM), as A6's transparent
    /// retries. A hook set with [`classify_with`](RetryPolicy::classify_with) still decides first.
    ///
    /// See [`grpc`](crate::grpc) for the whole picture.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::grpc::GrpcPolicy;
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // UNAVAILABLE once (a trailers-only answer), then OK.
    /// let calls = Arc::new(AtomicU32::new(0));
    /// let server = service_fn(move |request: Request<String>| {
    ///     let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
    ///     let retried = request.headers().get("grpc-previous-rpc-attempts").cloned();
    ///     async move {
    ///         let status = if first { "14" } else { "0" };
    ///         assert_eq!(retried.is_some(), !first);
    ///         let response = Response::builder().header("grpc-status", status);
    ///         Ok::<_, Infallible>(response.body(String::new()).unwrap())
    ///     }
    /// });
    /// let client = Retry::new(server, RetryPolicy::default().grpc(GrpcPolicy::default()));
    /// let response = client.oneshot(Request::post("http://svc/pkg.Svc/Call").body(String::new()).unwrap());
    /// let response = response.await.unwrap();
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// assert!(history.to_string().starts_with("UNAVAILABLE (wait "), "{history}");
    /// assert!(history.to_string().ends_with("OK: the outcome was final"), "{history}");
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    pub fn grpc(mut self, grpc: GrpcPolicy) -> Self {
        self.grpc = Some(Arc::new(grpc));
        self
    }
}
