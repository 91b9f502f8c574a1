//! `grpc-retry-pushback-ms`: the server's word on when (or whether) to retry (gRFC A6).

use std::time::Duration;

use http::{HeaderMap, HeaderName};

/// The header a gRPC server sets to tell clients when to retry a failed call: a non-negative number of
/// milliseconds; a negative or unreadable value means "do not retry".
///
/// ```
/// use tower_http_retry::grpc::GRPC_RETRY_PUSHBACK_MS;
///
/// assert_eq!(GRPC_RETRY_PUSHBACK_MS, "grpc-retry-pushback-ms");
/// ```
pub const GRPC_RETRY_PUSHBACK_MS: HeaderName = HeaderName::from_static("grpc-retry-pushback-ms");

/// What a response's pushback header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerPushback {
    /// No header: the client's own backoff decides.
    Absent,
    /// Retry after exactly this long.
    After(Duration),
    /// Do not retry (a negative or malformed value).
    DoNotRetry,
}

impl ServerPushback {
    /// Reads the header. A6 reads one value; several are as malformed as one that does not parse.
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(GRPC_RETRY_PUSHBACK_MS).iter();
        let Some(value) = values.next() else {
            return ServerPushback::Absent;
        };
        if values.next().is_some() {
            return ServerPushback::DoNotRetry;
        }
        // Digits only: "+5", " 5" and "5.0" are not what A6 allows. u64 milliseconds cannot overflow a
        // Duration; an overlong value fails to parse and is a refusal, not a panic.
        let text = value.to_str().unwrap_or("");
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return ServerPushback::DoNotRetry;
        }
        match text.parse::<u64>() {
            Ok(ms) => ServerPushback::After(Duration::from_millis(ms)),
            Err(_) => ServerPushback::DoNotRetry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn of(values: &[&'static str]) -> ServerPushback {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(GRPC_RETRY_PUSHBACK_MS, HeaderValue::from_static(value));
        }
        ServerPushback::of(&headers)
    }

    #[test]
    fn milliseconds_exactly() {
        assert_eq!(of(&[]), ServerPushback::Absent);
        assert_eq!(of(&["0"]), ServerPushback::After(Duration::ZERO));
        assert_eq!(
            of(&["37"]),
            ServerPushback::After(Duration::from_millis(37))
        );
        assert_eq!(
            of(&["18446744073709551615"]),
            ServerPushback::After(Duration::from_millis(u64::MAX))
        );
    }

    #[test]
    fn negative_or_malformed_means_do_not_retry() {
        for bad in [
            "-1",
            "",
            " 5",
            "+5",
            "5.0",
            "5ms",
            "18446744073709551616",
            "1e3",
        ] {
            assert_eq!(of(&[bad]), ServerPushback::DoNotRetry, "{bad:?}");
        }
        assert_eq!(of(&["5", "6"]), ServerPushback::DoNotRetry);
    }
}
