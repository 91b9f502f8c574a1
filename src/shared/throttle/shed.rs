//! The error a shed request carries: it was not sent, and when to come back.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// A request the [throttle](super) refused without sending it: in shed mode its turn was further
/// away than the mode allows, or the authority's line was full.
///
/// It is the [`source`](crate::Error::inner) of an [`Error`](crate::Error) for which
/// [`is_shed`](crate::Error::is_shed) holds.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceExt};
/// use tower_http_retry::throttle::{Shed, Throttle};
/// use tower_http_retry::{Retry, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let server = service_fn(|_: Request<String>| async {
///     Ok::<_, Infallible>(Response::new(String::new()))
/// });
/// let throttle = Throttle::new().shed(Duration::from_secs(1));
/// let api = "http://api.example/v1/items";
/// throttle.hold(&api.parse::<http::Uri>().unwrap(), Duration::from_secs(30));
/// let client = Retry::new(server, RetryPolicy::default().throttle(throttle));
///
/// let error = client.oneshot(Request::get(api).body(String::new()).unwrap()).await.unwrap_err();
/// assert!(error.is_shed());
/// let shed = error.inner().unwrap().downcast_ref::<Shed>().unwrap();
/// assert_eq!(shed.retry_in(), Duration::from_secs(30));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shed {
    retry_in: Duration,
}

impl Shed {
    pub(crate) fn new(retry_in: Duration) -> Self {
        Self { retry_in }
    }

    /// How long until the request's turn would have come, as estimated when it was shed: come back
    /// no sooner.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn demo(shed: tower_http_retry::throttle::Shed) {
    /// let retry_in: Duration = shed.retry_in();
    /// # let _ = retry_in;
    /// # }
    /// ```
    pub fn retry_in(&self) -> Duration {
        self.retry_in
    }
}

impl fmt::Display for Shed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shed by the throttle: the server's rate allows this request in {:?}",
            self.retry_in
        )
    }
}

impl StdError for Shed {}
