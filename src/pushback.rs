//! Shared pushback, now part of the [throttle](crate::throttle): every request to a server that asked
//! clients to stay away waits, and then leaves at the rate the server admits.
//!
//! ```
//! #![allow(deprecated)]
//! use tower_http_retry::pushback::Pushback;
//! use tower_http_retry::{RetryLayer, RetryPolicy};
//!
//! let layer = RetryLayer::new(RetryPolicy::default().pushback(Pushback::new()));
//! # let _ = layer;
//! ```

/// The former pushback handle: a [`Throttle`](crate::throttle::Throttle), whose `hold` and
/// `held_until` it had.
#[deprecated(since = "0.2.0", note = "use `throttle::Throttle`, on by default")]
pub type Pushback = crate::throttle::Throttle;
