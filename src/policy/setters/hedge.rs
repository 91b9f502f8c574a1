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
