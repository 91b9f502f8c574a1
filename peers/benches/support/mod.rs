//! What the in-memory benchmarks (`success_path`, `retry_path`) share. A directory of its own, so
//! that cargo does not take it for a benchmark.

pub mod counting_alloc;
pub mod measure;
