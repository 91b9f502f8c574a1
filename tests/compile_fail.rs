//! What the compiler says to a stack that cannot retry its request body: the crate's hint (put a
//! `ReplayBodyLayer` outside the `RetryLayer`) at the `.oneshot()` the README calls, not only "the
//! method exists but its trait bounds were not satisfied". The expected output is in `tests/ui/*.stderr`
//! (regenerate it with `TRYBUILD=overwrite cargo test --test compile_fail`).
//!
//! Without the `reqwest` feature only: it adds `reqwest::Body` to the list of bodies the compiler
//! names, which would make the output differ between feature sets.

#![cfg(not(feature = "reqwest"))]

#[test]
fn a_body_that_cannot_be_replayed_is_named_with_the_fix_where_oneshot_is_called() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
