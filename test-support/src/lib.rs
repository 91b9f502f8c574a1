//! What tower-http-retry's tests, examples, benchmarks (`peers/`) and fuzzers share: a scripted
//! server and an in-memory scripted service, hostile bodies, streamed uploads, a fault-injecting
//! server, rate limiters, a redis-server child (plain or TLS), captured log lines and a watchdog.
//!
//! It does not depend on tower-http-retry (see its manifest): helpers that need the crate's types
//! stay with the tests that use them. [`BoxError`] is the same type as `tower_http_retry::BoxError`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bodies;
pub mod captured;
pub mod checks;
pub mod durations;
pub mod faults;
pub mod jobs;
pub mod limiters;
pub mod nginx;
pub mod redis_server;
pub mod redis_tls;
mod resetting;
pub mod script;
pub mod server;
pub mod upload;
pub mod watchdog;

/// A boxed error that can cross threads: the same type as `tower_http_retry::BoxError`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
