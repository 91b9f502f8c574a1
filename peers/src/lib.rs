//! Benchmarks of tower-http-retry side by side with the retry layers its users would pick instead.
//!
//! The benchmarks are in `benches/`; this library holds what they share: the workload (one request
//! shape and an in-memory service that answers it), the contenders built the way their users build them,
//! the loopback server and clients, and
//! fleet mode's budget on a Redis of its own. See `BENCHMARKS.md` at the workspace root for the figures.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod contenders;
pub mod fleet;
pub mod inmemory;
pub mod loopback;
pub mod paired;
/// The tests' redis-server helper, shared: a server of the benchmark's own on a free port.
pub use retry_test_support::redis_server;
pub mod report;
pub mod workload;
