//! Which gRPC codes are retried, and as which class.

use super::code::GrpcCode;
use crate::classify::RetryClass;

/// The gRPC status codes worth another attempt, and the class each one is retried as.
///
/// The default is gRFC A6's and Envoy's advice: `UNAVAILABLE` is transient (the server, or the
/// connection to it, is down for a moment) and `RESOURCE_EXHAUSTED` is throttling (a quota or the
/// server's capacity is spent: waited on with the throttling backoff). Every other code is final:
/// `INVALID_ARGUMENT`, `NOT_FOUND` and the like cannot be fixed by sending the same call again, and
/// `DEADLINE_EXCEEDED`, `INTERNAL`, `UNKNOWN` and `ABORTED` may have taken effect.
///
/// As in A6, the codes listed are retried whatever the call: every gRPC call is a POST, and it is the
/// service's documentation that says which codes a call may safely be retried on.
///
/// ```
/// use tower_http_retry::classify::RetryClass;
/// use tower_http_retry::grpc::{GrpcCode, GrpcPolicy};
/// use tower_http_retry::RetryPolicy;
///
/// // This service also answers ABORTED to a transaction that lost a race, safe to run again.
/// let grpc = GrpcPolicy::new()
///     .retry_on(GrpcCode::Aborted, RetryClass::Transient)
///     .never_retry(GrpcCode::ResourceExhausted);
/// assert_eq!(grpc.class_of(GrpcCode::Aborted), Some(RetryClass::Transient));
/// assert_eq!(grpc.class_of(GrpcCode::ResourceExhausted), None);
/// let policy = RetryPolicy::default().grpc(grpc);
/// # let _ = policy;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcPolicy {
    classes: [Option<RetryClass>; 17],
}

impl Default for GrpcPolicy {
    fn default() -> Self {
        Self {
            classes: [None; 17],
        }
        .retry_on(GrpcCode::Unavailable, RetryClass::Transient)
        .retry_on(GrpcCode::ResourceExhausted, RetryClass::Throttling)
    }
}

impl GrpcPolicy {
    /// The default: `UNAVAILABLE` (transient) and `RESOURCE_EXHAUSTED` (throttling).
    ///
    /// ```
    /// use tower_http_retry::classify::RetryClass;
    /// use tower_http_retry::grpc::{GrpcCode, GrpcPolicy};
    ///
    /// let grpc = GrpcPolicy::new();
    /// assert_eq!(grpc.class_of(GrpcCode::Unavailable), Some(RetryClass::Transient));
    /// assert_eq!(grpc.class_of(GrpcCode::ResourceExhausted), Some(RetryClass::Throttling));
    /// assert_eq!(grpc.class_of(GrpcCode::InvalidArgument), None);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Retries `code`, as `class` (which picks the backoff and limits: see
    /// [`RetryPolicy::backoff_for`]). `OK` is never retried, whatever is set.
    ///
    /// ```
    /// use tower_http_retry::classify::RetryClass;
    /// use tower_http_retry::grpc::{GrpcCode, GrpcPolicy};
    ///
    /// let grpc = GrpcPolicy::new().retry_on(GrpcCode::Unavailable, RetryClass::Throttling);
    /// assert_eq!(grpc.class_of(GrpcCode::Unavailable), Some(RetryClass::Throttling));
    /// ```
    pub fn retry_on(mut self, code: GrpcCode, class: RetryClass) -> Self {
        if code != GrpcCode::Ok {
            self.classes[code.as_i32() as usize] = Some(class);
        }
        self
    }

    /// Never retries `code`.
    ///
    /// ```
    /// use tower_http_retry::grpc::{GrpcCode, GrpcPolicy};
    ///
    /// let grpc = GrpcPolicy::new().never_retry(GrpcCode::Unavailable);
    /// assert_eq!(grpc.class_of(GrpcCode::Unavailable), None);
    /// ```
    pub fn never_retry(mut self, code: GrpcCode) -> Self {
        self.classes[code.as_i32() as usize] = None;
        self
    }

    /// The class `code` is retried as, or `None` when it is final.
    ///
    /// ```
    /// use tower_http_retry::grpc::{GrpcCode, GrpcPolicy};
    ///
    /// assert_eq!(GrpcPolicy::new().class_of(GrpcCode::Ok), None);
    /// ```
    pub fn class_of(&self, code: GrpcCode) -> Option<RetryClass> {
        self.classes[code.as_i32() as usize]
    }
}
