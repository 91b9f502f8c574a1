//! `Retry-After` and `Date` from arbitrary bytes.
#![no_main]

use tower_http_retry_fuzz::properties;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Vec<u8>, Vec<u8>, u32)| {
    let (value, date, now) = input;
    properties::check_retry_after(&value, &date, now);
});
