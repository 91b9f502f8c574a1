//! `reqwest::Body` as a replayable body: a buffered one is copied, a streamed one is not replayable.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use crate::body::{NotReplayable, ReplayableBody};

/// Whether this process was told that a streamed `reqwest::Body` is never retried.
static WARNED: AtomicBool = AtomicBool::new(false);

/// A buffered body (made from bytes or a string) is sent again from a copy of its bytes; a streamed
/// one (`reqwest::Body::wrap_stream`, `reqwest::Body::wrap`) cannot be: wrap it in a
/// [`ReplayBody`](crate::body::ReplayBody), with [`ReplayBodyLayer`](crate::body::ReplayBodyLayer)
/// outside the retry layer. Without it, a request with a streamed body is sent once and never retried
/// (the history's stop reason is [`NotReplayable::Declined`]), and the first such request of the
/// process logs a warning naming `ReplayBodyLayer`.
///
/// ```
/// use tower_http_retry::body::{NotReplayable, ReplayableBody};
///
/// let body = reqwest::Body::from("{\"amount\": 100}");
/// let copy = body.replay().unwrap();
/// assert_eq!(copy.as_bytes(), Some(&b"{\"amount\": 100}"[..]));
/// ```
impl ReplayableBody for ::reqwest::Body {
    fn replay(&self) -> Result<Self, NotReplayable> {
        // reqwest keeps a buffered body's `Bytes` to itself; a copy is the only way to another one.
        match self.as_bytes() {
            Some(bytes) => Ok(Bytes::copy_from_slice(bytes).into()),
            None => {
                if !WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "a streamed reqwest::Body cannot be replayed, so requests with one are never \
                         retried; put ReplayBodyLayer outside the retry layer to record it for the \
                         retries (this warning is logged once)"
                    );
                }
                Err(NotReplayable::Declined)
            }
        }
    }
}
