//! `reqwest::Body` as a replayable body: a buffered one is copied, a streamed one is not replayable.

use bytes::Bytes;

use crate::body::{NotReplayable, ReplayableBody};

/// A buffered body (made from bytes or a string) is sent again from a copy of its bytes; a streamed
/// one (`reqwest::Body::wrap_stream`) cannot be: wrap it in a [`ReplayBody`](crate::body::ReplayBody).
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
            None => Err(NotReplayable::Declined),
        }
    }
}
