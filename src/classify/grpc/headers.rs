//! The request headers gRPC retries carry: `grpc-previous-rpc-attempts`, and `grpc-timeout` for the
//! time the call has left.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

/// The header a retry carries with the number of attempts before it (gRFC A6).
///
/// ```
/// use tower_http_retry::grpc::GRPC_PREVIOUS_RPC_ATTEMPTS;
///
/// assert_eq!(GRPC_PREVIOUS_RPC_ATTEMPTS, "grpc-previous-rpc-attempts");
/// ```
pub const GRPC_PREVIOUS_RPC_ATTEMPTS: HeaderName =
    HeaderName::from_static("grpc-previous-rpc-attempts");

/// The header with the time a call has left.
///
/// ```
/// use tower_http_retry::grpc::GRPC_TIMEOUT;
///
/// assert_eq!(GRPC_TIMEOUT, "grpc-timeout");
/// ```
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// The most digits gRPC allows in a `grpc-timeout` value.
const MAX_DIGITS: usize = 8;

/// Reads `grpc-timeout` ("100m", "5S"; at most 8 digits and one unit). `None` when absent or
/// malformed: a malformed one sets no deadline here, as gRPC servers ignore it too.
pub(crate) fn timeout(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(GRPC_TIMEOUT)?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value * 3600),
        "M" => Duration::from_secs(value * 60),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

/// Writes `left` as a `grpc-timeout` value, in the finest unit whose value fits 8 digits, rounded up
/// so that a server never sees less time than there is.
fn timeout_value(left: Duration) -> HeaderValue {
    let nanos = left.as_nanos();
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    for (size, unit) in units {
        let value = nanos.div_ceil(size);
        if value < 100_000_000 {
            return HeaderValue::from_str(&format!("{value}{unit}")).expect("digits and a letter");
        }
    }
    HeaderValue::from_static("99999999H")
}

/// Marks a retry's head: how many attempts went before it, and, when the caller sent a
/// `grpc-timeout`, the time the call has left instead of the time it started with.
pub(crate) fn mark_retry(headers: &mut HeaderMap, attempt: u32, left: Option<Duration>) {
    headers.insert(
        GRPC_PREVIOUS_RPC_ATTEMPTS,
        HeaderValue::from(attempt.saturating_sub(1)),
    );
    if let Some(left) = left.filter(|_| headers.contains_key(GRPC_TIMEOUT)) {
        headers.insert(GRPC_TIMEOUT, timeout_value(left));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_timeout(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_TIMEOUT, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn reads_every_unit_and_refuses_garbage() {
        let ms = Duration::from_millis;
        assert_eq!(timeout(&with_timeout("250m")), Some(ms(250)));
        assert_eq!(timeout(&with_timeout("2S")), Some(ms(2000)));
        assert_eq!(timeout(&with_timeout("1M")), Some(ms(60_000)));
        assert_eq!(timeout(&with_timeout("1H")), Some(ms(3_600_000)));
        assert_eq!(timeout(&with_timeout("7u")), Some(Duration::from_micros(7)));
        assert_eq!(timeout(&with_timeout("7n")), Some(Duration::from_nanos(7)));
        assert_eq!(
            timeout(&with_timeout("99999999H")),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
        for bad in ["", "m", "100", "100x", "123456789m", "-5m", "5 m", "1.5S"] {
            assert_eq!(timeout(&with_timeout(bad)), None, "{bad:?}");
        }
        assert_eq!(timeout(&HeaderMap::new()), None);
    }

    #[test]
    fn writes_the_finest_unit_that_fits_and_rounds_up() {
        assert_eq!(timeout_value(Duration::from_millis(250)), "250000u");
        assert_eq!(timeout_value(Duration::from_nanos(99_999_999)), "99999999n");
        assert_eq!(timeout_value(Duration::from_secs(100)), "100000m");
        assert_eq!(timeout_value(Duration::from_nanos(100_000_001)), "100001u");
        assert_eq!(timeout_value(Duration::MAX), "99999999H");
    }

    #[test]
    fn a_retry_is_numbered_and_its_timeout_is_what_is_left() {
        let mut headers = with_timeout("1S");
        mark_retry(&mut headers, 3, Some(Duration::from_millis(400)));
        assert_eq!(headers[GRPC_PREVIOUS_RPC_ATTEMPTS], "2");
        assert_eq!(headers[GRPC_TIMEOUT], "400000u");
        // No grpc-timeout from the caller: none is invented.
        let mut headers = HeaderMap::new();
        mark_retry(&mut headers, 2, Some(Duration::from_millis(400)));
        assert_eq!(headers[GRPC_PREVIOUS_RPC_ATTEMPTS], "1");
        assert!(!headers.contains_key(GRPC_TIMEOUT));
    }
}
