//! Rate-limit headers of every generation from arbitrary bytes.
#![no_main]

use tower_http_retry_fuzz::properties;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Vec<(Vec<u8>, Vec<u8>)>, u32)| {
    let (headers, now) = input;
    properties::check_rate_limit(&headers, now);
});
