//! What the in-memory benchmarks (`success_path`, `retry_path`) share. A directory of its own, so
//! that cargo does not take it for a benchmark. `loopback.rs`, beside it, is what the loopback
//! benchmarks of the crate's bodies (`replay`, `response_body`) share; they include it by path.

pub mod counting_alloc;
pub mod measure;
