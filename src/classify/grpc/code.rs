//! gRPC status codes, as they arrive in `grpc-status` or are derived from a non-200 HTTP status.

use std::fmt;

use http::{HeaderMap, HeaderName, StatusCode};

/// The header a gRPC server puts its status code in: in the trailers, or in the response headers of a
/// trailers-only response (how a server that fails a call at once answers).
///
/// ```
/// use tower_http_retry::grpc::GRPC_STATUS;
///
/// assert_eq!(GRPC_STATUS, "grpc-status");
/// ```
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// A gRPC status code (the canonical codes of `google.rpc.Code`).
///
/// ```
/// use http::{HeaderMap, HeaderValue, StatusCode};
/// use tower_http_retry::grpc::GrpcCode;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("grpc-status", HeaderValue::from_static("14"));
/// assert_eq!(GrpcCode::of_response(StatusCode::OK, &headers), Some(GrpcCode::Unavailable));
/// assert_eq!(GrpcCode::Unavailable.to_string(), "UNAVAILABLE");
/// // A proxy's 503 without grpc-status is UNAVAILABLE, as gRPC maps it.
/// let none = HeaderMap::new();
/// assert_eq!(
///     GrpcCode::of_response(StatusCode::SERVICE_UNAVAILABLE, &none),
///     Some(GrpcCode::Unavailable)
/// );
/// // A 200 without grpc-status: the status comes in the trailers.
/// assert_eq!(GrpcCode::of_response(StatusCode::OK, &none), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrpcCode {
    /// 0: not an error.
    Ok,
    /// 1: the operation was cancelled, typically by the caller.
    Cancelled,
    /// 2: an unknown error (also any `grpc-status` value this crate cannot read).
    Unknown,
    /// 3: the client specified an invalid argument.
    InvalidArgument,
    /// 4: the deadline expired before the operation could complete.
    DeadlineExceeded,
    /// 5: some requested entity was not found.
    NotFound,
    /// 6: the entity a client attempted to create already exists.
    AlreadyExists,
    /// 7: the caller does not have permission.
    PermissionDenied,
    /// 8: some resource has been exhausted (a quota, or the server's capacity).
    ResourceExhausted,
    /// 9: the system is not in a state required for the operation.
    FailedPrecondition,
    /// 10: the operation was aborted (a concurrency conflict).
    Aborted,
    /// 11: the operation was attempted past the valid range.
    OutOfRange,
    /// 12: the operation is not implemented or supported.
    Unimplemented,
    /// 13: an internal error.
    Internal,
    /// 14: the service is currently unavailable; a retry may succeed.
    Unavailable,
    /// 15: unrecoverable data loss or corruption.
    DataLoss,
    /// 16: the request does not have valid authentication credentials.
    Unauthenticated,
}

const ALL: [GrpcCode; 17] = [
    GrpcCode::Ok,
    GrpcCode::Cancelled,
    GrpcCode::Unknown,
    GrpcCode::InvalidArgument,
    GrpcCode::DeadlineExceeded,
    GrpcCode::NotFound,
    GrpcCode::AlreadyExists,
    GrpcCode::PermissionDenied,
    GrpcCode::ResourceExhausted,
    GrpcCode::FailedPrecondition,
    GrpcCode::Aborted,
    GrpcCode::OutOfRange,
    GrpcCode::Unimplemented,
    GrpcCode::Internal,
    GrpcCode::Unavailable,
    GrpcCode::DataLoss,
    GrpcCode::Unauthenticated,
];

impl GrpcCode {
    /// The code for a numeric value; values outside 0..=16 are [`Unknown`](GrpcCode::Unknown), as
    /// gRPC's own clients read them.
    ///
    /// ```
    /// use tower_http_retry::grpc::GrpcCode;
    ///
    /// assert_eq!(GrpcCode::from_i32(8), GrpcCode::ResourceExhausted);
    /// assert_eq!(GrpcCode::from_i32(99), GrpcCode::Unknown);
    /// ```
    pub fn from_i32(value: i32) -> Self {
        usize::try_from(value)
            .ok()
            .and_then(|i| ALL.get(i).copied())
            .unwrap_or(GrpcCode::Unknown)
    }

    /// The numeric value sent in `grpc-status`.
    ///
    /// ```
    /// use tower_http_retry::grpc::GrpcCode;
    ///
    /// assert_eq!(GrpcCode::Unavailable.as_i32(), 14);
    /// ```
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The code a response carries in its head: its `grpc-status` header (an unreadable value is
    /// [`Unknown`](GrpcCode::Unknown)), or, without one, the code gRPC derives from a non-200 HTTP
    /// status (a proxy's answer: 429, 502, 503 and 504 are `UNAVAILABLE`). `None` for a 200 without
    /// `grpc-status`: its status comes in the trailers, after the response has begun.
    ///
    /// ```
    /// use http::{HeaderMap, StatusCode};
    /// use tower_http_retry::grpc::GrpcCode;
    ///
    /// let none = HeaderMap::new();
    /// assert_eq!(
    ///     GrpcCode::of_response(StatusCode::NOT_FOUND, &none),
    ///     Some(GrpcCode::Unimplemented)
    /// );
    /// ```
    pub fn of_response(status: StatusCode, headers: &HeaderMap) -> Option<Self> {
        if let Some(value) = headers.get(GRPC_STATUS) {
            let code = value
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
                .map_or(GrpcCode::Unknown, GrpcCode::from_i32);
            return Some(code);
        }
        (status != StatusCode::OK).then(|| Self::of_http_status(status))
    }

    /// The code gRPC gives a response that has an HTTP status but no `grpc-status`
    /// (grpc/doc/http-grpc-status-mapping.md).
    fn of_http_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 => GrpcCode::Internal,
            401 => GrpcCode::Unauthenticated,
            403 => GrpcCode::PermissionDenied,
            404 => GrpcCode::Unimplemented,
            429 | 502 | 503 | 504 => GrpcCode::Unavailable,
            _ => GrpcCode::Unknown,
        }
    }

    /// The name gRPC gives the code, as in its specification: `UNAVAILABLE`, `RESOURCE_EXHAUSTED`.
    ///
    /// ```
    /// use tower_http_retry::grpc::GrpcCode;
    ///
    /// assert_eq!(GrpcCode::ResourceExhausted.as_str(), "RESOURCE_EXHAUSTED");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            GrpcCode::Ok => "OK",
            GrpcCode::Cancelled => "CANCELLED",
            GrpcCode::Unknown => "UNKNOWN",
            GrpcCode::InvalidArgument => "INVALID_ARGUMENT",
            GrpcCode::DeadlineExceeded => "DEADLINE_EXCEEDED",
            GrpcCode::NotFound => "NOT_FOUND",
            GrpcCode::AlreadyExists => "ALREADY_EXISTS",
            GrpcCode::PermissionDenied => "PERMISSION_DENIED",
            GrpcCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            GrpcCode::FailedPrecondition => "FAILED_PRECONDITION",
            GrpcCode::Aborted => "ABORTED",
            GrpcCode::OutOfRange => "OUT_OF_RANGE",
            GrpcCode::Unimplemented => "UNIMPLEMENTED",
            GrpcCode::Internal => "INTERNAL",
            GrpcCode::Unavailable => "UNAVAILABLE",
            GrpcCode::DataLoss => "DATA_LOSS",
            GrpcCode::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

impl fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_status(value: &'static [u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_STATUS, HeaderValue::from_bytes(value).unwrap());
        headers
    }

    #[test]
    fn every_code_round_trips_through_its_number() {
        for (i, code) in ALL.iter().enumerate() {
            assert_eq!(GrpcCode::from_i32(i as i32), *code);
            assert_eq!(code.as_i32(), i as i32);
        }
        assert_eq!(GrpcCode::from_i32(-1), GrpcCode::Unknown);
        assert_eq!(GrpcCode::from_i32(17), GrpcCode::Unknown);
    }

    #[test]
    fn hostile_grpc_status_values_read_as_unknown() {
        for value in [
            &b""[..],
            b"x",
            b"14x",
            b"99999999999999999999",
            b"-14",
            b"\xff",
        ] {
            let code = GrpcCode::of_response(StatusCode::OK, &with_status(value));
            assert_eq!(code, Some(GrpcCode::Unknown), "{value:?}");
        }
        let padded = GrpcCode::of_response(StatusCode::OK, &with_status(b" 14 "));
        assert_eq!(padded, Some(GrpcCode::Unavailable));
    }

    #[test]
    fn grpc_status_wins_over_the_http_status() {
        let code = GrpcCode::of_response(StatusCode::SERVICE_UNAVAILABLE, &with_status(b"3"));
        assert_eq!(code, Some(GrpcCode::InvalidArgument));
        let code = GrpcCode::of_response(StatusCode::IM_A_TEAPOT, &HeaderMap::new());
        assert_eq!(code, Some(GrpcCode::Unknown));
    }
}
