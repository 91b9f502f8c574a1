use std::time::{Duration, SystemTime};

use http::header::DATE;
use http::{HeaderMap, HeaderValue};

use super::delta::{RATELIMIT_REMAINING, RATELIMIT_RESET};
use super::structured::{RATELIMIT, RATELIMIT_POLICY};
use super::vendor::{X_RATELIMIT_REMAINING, X_RATELIMIT_RESET};
use super::*;
use crate::wait::WaitReason;
use proptest::prelude::*;

const NOW: &str = "Wed, 06 Nov 2024 08:49:37 GMT";

fn now() -> SystemTime {
    httpdate::parse_http_date(NOW).unwrap()
}

fn unix(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

fn headers(fields: &[(&'static str, &[u8])]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        headers.append(*name, HeaderValue::from_bytes(value).unwrap());
    }
    headers
}

fn status(remaining: u64, reset: Option<u64>) -> Option<RateLimitStatus> {
    Some(RateLimitStatus {
        remaining,
        reset: reset.map(Duration::from_secs),
    })
}

#[test]
fn the_table() {
    let in_90_s = (unix(now()) + 90).to_string();
    let in_90_s_by_server = (unix(now()) - 3600 + 90).to_string();
    type Fields<'a> = Vec<(&'static str, &'a [u8])>;
    let cases: Vec<(Fields<'_>, Option<RateLimitStatus>)> = vec![
        // The structured fields of the current draft.
        (
            vec![("ratelimit", br#""default";r=0;t=30"#)],
            status(0, Some(30)),
        ),
        (
            vec![("ratelimit", br#""default";r=50;t=30"#)],
            status(50, Some(30)),
        ),
        (vec![("ratelimit", br#"default;r=5"#)], status(5, None)),
        (
            vec![("ratelimit", br#""a";r=9;t=1, "b";r=0;t=60, "c";r=0;t=5"#)],
            status(0, Some(60)),
        ),
        (
            vec![
                ("ratelimit", br#""a";r=3;t=1"#),
                ("ratelimit", br#""b";r=2;t=7"#),
            ],
            status(2, Some(7)),
        ),
        (
            vec![("ratelimit", br#""a";r=0;t=1;pk=:cHJvamVjdDEyMw==:"#)],
            status(0, Some(1)),
        ),
        (
            vec![("ratelimit", br#""we\"ird";r=0;t=4"#)],
            status(0, Some(4)),
        ),
        // A spent quota without `t` resets within its policy's window.
        (
            vec![
                ("ratelimit", br#""day";r=0"#),
                (
                    "ratelimit-policy",
                    br#""burst";q=10;w=1, "day";q=1000;w=86400"#,
                ),
            ],
            status(0, Some(86400)),
        ),
        (vec![("ratelimit", br#""day";r=0"#)], status(0, None)),
        (
            vec![
                ("ratelimit", br#""day";r=0"#),
                ("ratelimit-policy", b"day;q=x"),
            ],
            status(0, None),
        ),
        // Draft 07's dictionary.
        (
            vec![("ratelimit", b"limit=100, remaining=0, reset=30")],
            status(0, Some(30)),
        ),
        (
            vec![("ratelimit", b"limit=100, remaining=7")],
            status(7, None),
        ),
        // Drafts 00 to 06.
        (
            vec![("ratelimit-remaining", b"0"), ("ratelimit-reset", b"12")],
            status(0, Some(12)),
        ),
        (vec![("ratelimit-remaining", b"3")], status(3, None)),
        // Vendor headers: delta-seconds, Unix time, Unix time against the server's Date, fractions.
        (
            vec![
                ("x-ratelimit-remaining", b"0"),
                ("x-ratelimit-reset", b"15"),
            ],
            status(0, Some(15)),
        ),
        (
            vec![
                ("x-ratelimit-remaining", b"0"),
                ("x-ratelimit-reset", in_90_s.as_bytes()),
            ],
            status(0, Some(90)),
        ),
        (
            vec![
                ("x-ratelimit-remaining", b"0"),
                ("x-ratelimit-reset", in_90_s_by_server.as_bytes()),
                ("date", b"Wed, 06 Nov 2024 07:49:37 GMT"),
            ],
            status(0, Some(90)),
        ),
        (
            vec![
                ("x-ratelimit-remaining", b"0"),
                ("x-ratelimit-reset", b"1000000000"),
                ("date", b"Sun, 06 Nov 2005 08:49:37 GMT"),
            ],
            status(0, Some(0)), // a Unix time in the past: reset already
        ),
        (
            vec![
                ("x-ratelimit-remaining", b" 0 "),
                ("x-ratelimit-reset", b"1.25"),
            ],
            Some(RateLimitStatus {
                remaining: 0,
                reset: Some(Duration::from_millis(1250)),
            }),
        ),
        (
            vec![
                ("x-ratelimit-remaining", b"0"),
                ("x-ratelimit-reset", b"soon"),
            ],
            status(0, None),
        ),
        // The newest generation that parses wins; a malformed one is skipped.
        (
            vec![
                ("ratelimit", br#""default";r=1;t=2"#),
                ("x-ratelimit-remaining", b"0"),
                ("x-ratelimit-reset", b"99"),
            ],
            status(1, Some(2)),
        ),
        (
            vec![
                ("ratelimit", br#""default";r=0;t=2.5"#),
                ("x-ratelimit-remaining", b"0"),
                ("x-ratelimit-reset", b"99"),
            ],
            status(0, Some(99)),
        ),
        // Ignored.
        (vec![("ratelimit", br#""default";r=-1;t=30"#)], None),
        (vec![("ratelimit", br#""default";r=1.5"#)], None),
        (vec![("ratelimit", br#""default";t=30"#)], None),
        (vec![("ratelimit", br#""unterminated;r=0;t=1"#)], None),
        (vec![("ratelimit", br#""a";r=0;t=1,"#)], None),
        (vec![("ratelimit", br#""a";r=0;t=1 junk"#)], None),
        (vec![("ratelimit", br#""a";r=0;t=1234567890123456"#)], None),
        (vec![("ratelimit", b"")], None),
        (
            vec![("ratelimit", br#""a";r=0"#), ("ratelimit", b"%%%")],
            None,
        ),
        (vec![("ratelimit", b"limit=100, remaining=-3")], None),
        (
            vec![("ratelimit-remaining", b"-1"), ("ratelimit-reset", b"5")],
            None,
        ),
        (vec![("x-ratelimit-remaining", b"1e3")], None),
        (
            vec![("x-ratelimit-remaining", b"99999999999999999999999")],
            None,
        ),
        (vec![("x-ratelimit-reset", b"10")], None),
        (vec![("x-ratelimit-remaining", b"\xff")], None),
        (vec![], None),
    ];
    for (fields, expected) in cases {
        assert_eq!(
            rate_limit(&headers(&fields), now()),
            expected,
            "{:?}",
            fields
                .iter()
                .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn only_a_spent_quota_with_a_reset_asks_for_a_wait() {
    let spent = headers(&[("ratelimit", br#""default";r=0;t=30"#)]);
    assert_eq!(exhausted_for(&spent, now()), Some(Duration::from_secs(30)));
    let left = headers(&[("ratelimit", br#""default";r=1;t=30"#)]);
    assert_eq!(exhausted_for(&left, now()), None);
    let unknown = headers(&[("x-ratelimit-remaining", b"0")]);
    assert_eq!(exhausted_for(&unknown, now()), None);
}

#[test]
fn retry_after_takes_precedence() {
    let both = headers(&[
        ("retry-after", b"3"),
        ("ratelimit", br#""default";r=0;t=30"#),
    ]);
    assert_eq!(
        server_delay(&both, now),
        Some((Duration::from_secs(3), WaitReason::RetryAfter))
    );
    let broken_retry_after = headers(&[
        ("retry-after", b"later"),
        ("ratelimit", br#""default";r=0;t=30"#),
    ]);
    assert_eq!(
        server_delay(&broken_retry_after, now),
        Some((Duration::from_secs(30), WaitReason::RateLimitReset))
    );
}

#[test]
fn the_clock_is_read_only_for_a_date_without_a_date_header() {
    let reads = std::cell::Cell::new(0);
    let clock = || {
        reads.set(reads.get() + 1);
        now()
    };
    let dated = b"Wed, 06 Nov 2024 08:50:07 GMT";
    let unix_reset = unix(now()) + 30;
    let unix_reset = unix_reset.to_string();
    let no_clock: [&[(&'static str, &[u8])]; 7] = [
        &[],
        &[("retry-after", b"3")],
        &[("retry-after", dated), ("date", NOW.as_bytes())],
        &[("ratelimit", br#""default";r=0;t=30"#)],
        &[("ratelimit-remaining", b"0"), ("ratelimit-reset", b"30")],
        &[
            ("x-ratelimit-remaining", b"0"),
            ("x-ratelimit-reset", b"30"),
        ],
        &[
            ("x-ratelimit-remaining", b"0"),
            ("x-ratelimit-reset", unix_reset.as_bytes()),
            ("date", NOW.as_bytes()),
        ],
    ];
    for fields in no_clock {
        let _ = server_delay(&headers(fields), clock);
        assert_eq!(reads.get(), 0, "{fields:?}");
    }
    let thirty = Some(Duration::from_secs(30));
    let retry_at = headers(&[("retry-after", dated)]);
    assert_eq!(server_delay(&retry_at, clock).map(|d| d.0), thirty);
    assert_eq!(reads.get(), 1);
    let reset_at = headers(&[
        ("x-ratelimit-remaining", b"0"),
        ("x-ratelimit-reset", unix_reset.as_bytes()),
    ]);
    assert_eq!(server_delay(&reset_at, clock).map(|d| d.0), thirty);
    assert_eq!(reads.get(), 2);
}

proptest! {
    #[test]
    fn any_bytes_never_panic(
        value in proptest::collection::vec(any::<u8>(), 0..48),
        structured in r#"[a-z"*;=,:?() 0-9.\-]{0,40}"#,
    ) {
        for bytes in [&value[..], structured.as_bytes()] {
            if let Ok(value) = HeaderValue::from_bytes(bytes) {
                let mut headers = HeaderMap::new();
                for name in [
                    RATELIMIT, RATELIMIT_POLICY, RATELIMIT_REMAINING, RATELIMIT_RESET,
                    X_RATELIMIT_REMAINING, X_RATELIMIT_RESET, DATE,
                ] {
                    headers.insert(name, value.clone());
                }
                let _ = rate_limit(&headers, SystemTime::UNIX_EPOCH);
                let _ = server_delay(&headers, SystemTime::now);
                // A structured field alone, and with a valid fallback that must still be reachable.
                let mut alone = HeaderMap::new();
                alone.insert(RATELIMIT, value.clone());
                alone.insert(X_RATELIMIT_REMAINING, HeaderValue::from_static("4"));
                let status = rate_limit(&alone, SystemTime::now());
                prop_assert!(status.is_some());
            }
        }
    }
}
