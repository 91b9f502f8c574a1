//! A failure with hostile `Retry-After` and `Date` through the real layer under a paused clock.
#![no_main]

use tower_http_retry_fuzz::properties;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (
    Vec<u8>,
    Vec<u8>,
    u32,
    u32,
    u8,
    u16,
    u16,
    Vec<(Vec<u8>, Vec<u8>)>
)| {
    let (retry_after, date, base_ms, cap_ms, jitter, max_retry_after_s, status, extra) = input;
    properties::check_wait(&properties::WaitCase {
        retry_after,
        date,
        base_ms: base_ms % 1_000_000,
        cap_ms: cap_ms % 1_000_000,
        jitter,
        max_retry_after_s: max_retry_after_s % 3_600,
        status,
        extra,
    });
});
