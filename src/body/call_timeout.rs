//! [`CallTimeoutBody`]: a response body that fails once the call's time is up, so that a timeout
//! covers the whole response, not only its head.
//!
//! The body of the call-timeout middleware, whose layer and service are in `src/call_timeout/`. It
//! stays here because it is public as `body::CallTimeoutBody`: re-exported from a body in
//! `call_timeout/`, it would make `body/` import a folder that needs the policy's `CallSettings`,
//! and `policy/` depends on `body/` (through `report/`), a circle `tests/layout.rs` forbids.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{sleep_until, Instant, Sleep};

use crate::BoxError;

/// The error of a [`CallTimeoutBody`] read past the call's deadline.
///
/// ```
/// use tower_http_retry::body::CallTimedOut;
///
/// let error: tower_http_retry::BoxError = Box::new(CallTimedOut);
/// assert!(error.is::<CallTimedOut>());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallTimedOut;

impl fmt::Display for CallTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the call's timeout passed while the response body was being read")
    }
}

impl std::error::Error for CallTimedOut {}

pin_project! {
    /// A response body that yields the inner body's frames until the call's deadline, then fails
    /// with [`CallTimedOut`] and ends. Made by [`CallTimeout`](crate::CallTimeout). The deadline is
    /// checked before each frame is read, so a body whose frames are always ready ends at it too; a
    /// frame asked for at or after the deadline is not read, unless the body has already ended.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use http_body_util::{BodyExt, Full};
    /// use tokio::time::Instant;
    /// use tower_http_retry::body::CallTimeoutBody;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let deadline = Instant::now() + Duration::from_secs(1);
    /// let body = CallTimeoutBody::new(Full::new(Bytes::from("ready")), deadline);
    /// assert_eq!(body.collect().await.unwrap().to_bytes(), "ready");
    /// # }
    /// ```
    #[derive(Debug)]
    pub struct CallTimeoutBody<B> {
        #[pin]
        inner: B,
        // Boxed so the body stays `Unpin` when the inner body is.
        timer: Option<Pin<Box<Sleep>>>,
        deadline: Instant,
    }
}

impl<B> CallTimeoutBody<B> {
    /// `inner`, failing once `deadline` has passed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http_body_util::Empty;
    /// use tokio::time::Instant;
    /// use tower_http_retry::body::CallTimeoutBody;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let body = CallTimeoutBody::new(Empty::<bytes::Bytes>::new(), Instant::now() + Duration::from_secs(30));
    /// # let _ = body;
    /// # }
    /// ```
    pub fn new(inner: B, deadline: Instant) -> Self {
        Self {
            inner,
            timer: Some(Box::pin(sleep_until(deadline))),
            deadline,
        }
    }
}

impl<B> Body for CallTimeoutBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let Some(timer) = this.timer.as_mut() else {
            return Poll::Ready(None); // timed out before: ended
        };
        // The clock, not only the timer: a body that is always ready never lets the timer be polled
        // (nor the runtime's timer driver turn), and would be read past the deadline. A body that
        // has ended still ends.
        if Instant::now() >= *this.deadline && !this.inner.is_end_stream() {
            *this.timer = None;
            return Poll::Ready(Some(Err(Box::new(CallTimedOut))));
        }
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                *this.timer = None;
                Poll::Ready(Some(Err(Box::new(CallTimedOut))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.timer.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
