//! When a slow attempt gets company: hedged requests.

use crate::hedge::Hedge;
use crate::policy::retry_policy::RetryPolicy;

/// When a slow attempt gets company: a copy sent while it is still in flight.
impl RetryPolicy {
    /// Hedges requests that are safe to send twice by `hedge`: see the [`hedge`](crate::hedge)
    /// module. Off by default.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::hedge::Hedge;
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // The first attempt is stuck behind a slow replica; the copy sent 10 ms later is not.
    /// let calls = Arc::new(AtomicUsize::new(0));
    /// let server = service_fn(move |_: Request<String>| {
    ///     let slow = calls.fetch_add(1, Ordering::SeqCst) == 0;
    ///     async move {
    ///         let took = if slow { 1_000 } else { 1 };
    ///         tokio::time::sleep(Duration::from_millis(took)).await;
    ///         Ok::<_, Infallible>(Response::new(String::from("ok")))
    ///     }
    /// });
    /// let hedge = Hedge::after(Duration::from_millis(10)).budget(1.0);
    /// let client = Retry::new(server, RetryPolicy::default().hedge(hedge));
    ///
    /// let start = tokio::time::Instant::now();
    /// let response = client.oneshot(Request::new(String::new())).await.unwrap();
    /// assert_eq!(start.elapsed(), Duration::from_millis(11));
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// assert_eq!((history.hedges(), history.won_by()), (1, Some(2)));
    /// # }
    /// ```
    pub fn hedge(mut self, hedge: Hedge) -> Self {
        self.hedge = Some(hedge);
        self
    }

    /// gRPC's A6 `hedgingPolicy`: hedges `hedging_delay` apart, at most `max_attempts` attempts
    /// (1 to 5) in flight and in all, and `non_fatal` the codes that let the other attempts go on
    /// (retried, as transient; `RESOURCE_EXHAUSTED` as throttling); any other code ends the call.
    /// As in A6, where a method's hedging policy is the service's word that the method is safe
    /// to send twice, calls of every method are hedged (gRPC calls are POSTs): use it on a channel
    /// whose methods all are, or turn it off per call with
    /// [`CallSettings::no_hedging`](crate::CallSettings::no_hedging). As in A6, every slow call
    /// may send all its hedges (a budget of `max_attempts - 1` per call); to bound hedges across
    /// calls, follow with [`hedge`](Self::hedge) and a smaller [`budget`](Hedge::budget) (which
    /// hedges idempotent or keyed calls only).
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::grpc::GrpcCode;
    /// use tower_http_retry::{Retry, RetryHistory, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // The first attempt hangs; the first hedge is UNAVAILABLE at once; the next one is OK.
    /// let calls = Arc::new(AtomicU32::new(0));
    /// let server = service_fn(move |_: Request<String>| {
    ///     let n = calls.fetch_add(1, Ordering::SeqCst);
    ///     async move {
    ///         if n == 0 {
    ///             tokio::time::sleep(Duration::from_secs(10)).await;
    ///         }
    ///         let status = if n == 1 { "14" } else { "0" };
    ///         let response = Response::builder().header("grpc-status", status);
    ///         Ok::<_, Infallible>(response.body(String::new()).unwrap())
    ///     }
    /// });
    /// let hedging = Duration::from_millis(20);
    /// let policy = RetryPolicy::default().grpc_hedging(hedging, 3, &[GrpcCode::Unavailable]);
    /// let client = Retry::new(server, policy);
    /// let request = Request::post("http://svc/pkg.Svc/Get").body(String::new()).unwrap();
    ///
    /// let start = tokio::time::Instant::now();
    /// let response = client.oneshot(request).await.unwrap();
    /// // UNAVAILABLE let the others go on, and the third attempt left at once.
    /// assert_eq!(start.elapsed(), Duration::from_millis(20));
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// assert_eq!((history.hedges(), history.won_by()), (2, Some(3)));
    /// # }
    /// ```
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    pub fn grpc_hedging(
        self,
        hedging_delay: std::time::Duration,
        max_attempts: u32,
        non_fatal: &[crate::classify::grpc::GrpcCode],
    ) -> Self {
        use crate::classify::grpc::{GrpcCode, GrpcPolicy};
        use crate::classify::RetryClass;
        let attempts = max_attempts.clamp(1, 5);
        let mut codes = GrpcPolicy::new()
            .never_retry(GrpcCode::Unavailable)
            .never_retry(GrpcCode::ResourceExhausted);
        for &code in non_fatal {
            let class = match code {
                GrpcCode::ResourceExhausted => RetryClass::Throttling,
                _ => RetryClass::Transient,
            };
            codes = codes.retry_on(code, class);
        }
        self.grpc(codes).max_attempts(attempts).hedge(
            Hedge::after(hedging_delay)
                .max_in_flight(attempts)
                .budget(f64::from(attempts - 1))
                .any_method(),
        )
    }

    /// No hedging (the default).
    ///
    /// ```
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::default().no_hedging();
    /// # let _ = policy;
    /// ```
    pub fn no_hedging(mut self) -> Self {
        self.hedge = None;
        self
    }
}
