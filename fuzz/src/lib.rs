//! What the fuzz targets share: the properties the proptest suite checks too.

// The properties are the tests' (`tests/hostile_headers.rs` runs them under `cargo test`); they use
// the crate's types, so they cannot live in the support crate, and the fuzz crate is outside the
// workspace, so the file is taken from where the tests keep it.
#[path = "../../tests/properties/mod.rs"]
pub mod properties;
