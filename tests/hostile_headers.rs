//! Whatever a server sends: arbitrary `Retry-After`, `Date`, statuses and headers never panic, never
//! shorten a wait below `Retry-After`, and never push a wait past its caps. The fuzz targets under
//! `fuzz/` check the same properties (`tests/properties/mod.rs`) with coverage guidance.

// `tests/properties/mod.rs`: a directory, so that cargo does not take it for a test of its own.
mod properties;

use proptest::prelude::*;

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        "[0-9]{0,25}".prop_map(String::into_bytes),
        "-?[0-9 .+e]{0,12}".prop_map(String::into_bytes),
        "(Mon|Sun|Sunday|Fri), [0-9]{1,2}[ -](Nov|Dec|Feb)[ -][0-9]{2,5} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
            .prop_map(String::into_bytes),
        "(Sun|Mon) (Nov|Feb) [ 0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}".prop_map(String::into_bytes),
        r#""[a-z]{0,6}";(r|q|t|w)=-?[0-9]{0,12}(;(r|q|t|w)=[0-9.]{0,6})*(, "[a-z]{0,3}";r=[0-9]{0,3})?"#
            .prop_map(String::into_bytes),
        "(limit|remaining|reset)=[0-9]{0,8}(, (limit|remaining|reset)=-?[0-9.]{0,8})*".prop_map(String::into_bytes),
    ]
}

fn raw_headers() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    let name = prop_oneof![
        Just(b"retry-after".to_vec()),
        Just(b"date".to_vec()),
        Just(b"ratelimit".to_vec()),
        Just(b"x-ratelimit-remaining".to_vec()),
        Just(b"x-ratelimit-reset".to_vec()),
        Just(b"ratelimit-policy".to_vec()),
        Just(b"ratelimit-remaining".to_vec()),
        Just(b"ratelimit-reset".to_vec()),
        proptest::collection::vec(any::<u8>(), 1..12),
    ];
    proptest::collection::vec((name, header_bytes()), 0..6)
}

proptest! {
    #[test]
    fn retry_after_never_panics_and_reads_seconds_exactly(
        value in header_bytes(),
        date in header_bytes(),
        now in any::<u32>(),
    ) {
        properties::check_retry_after(&value, &date, now);
    }

    #[test]
    fn classification_of_any_status_and_headers(
        status in 100u16..1000,
        headers in raw_headers(),
        method in any::<u8>(),
        keyed in any::<bool>(),
    ) {
        properties::check_classify(status, &headers, method, keyed);
    }

    #[test]
    fn hostile_retry_after_never_shortens_or_overstretches_a_wait(
        retry_after in header_bytes(),
        date in header_bytes(),
        base_ms in 0u32..100_000,
        cap_ms in 0u32..100_000,
        jitter in any::<u8>(),
        max_retry_after_s in 0u16..600,
        status in prop_oneof![Just(429u16), Just(503u16)],
        extra in raw_headers(),
    ) {
        properties::check_wait(&properties::WaitCase {
            retry_after, date, base_ms, cap_ms, jitter, max_retry_after_s, status, extra,
        });
    }

    #[test]
    fn rate_limit_headers_never_panic_and_wait_only_for_a_spent_quota(
        headers in raw_headers(),
        now in any::<u32>(),
    ) {
        properties::check_rate_limit(&headers, now);
    }
}
