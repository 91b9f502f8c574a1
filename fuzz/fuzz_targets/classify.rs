//! The default classifier over arbitrary statuses, headers and methods.
#![no_main]

use tower_http_retry_fuzz::properties;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u16, Vec<(Vec<u8>, Vec<u8>)>, u8, bool)| {
    let (status, headers, method, keyed) = input;
    properties::check_classify(status, &headers, method, keyed);
});
