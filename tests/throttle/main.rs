//! The throttle: pacing against the project's own limiters (`pacing`) and regressions found outside
//! (`regressions`), all under tokio's paused clock; one schedule shared by a fleet through a store
//! (`fleet`: paused clock in process, real time on Redis).

#[path = "../support/durations.rs"]
mod durations;
#[path = "../support/limiters.rs"]
mod limiters;
#[cfg(feature = "redis")]
#[path = "../support/redis_server.rs"]
mod redis_server;

mod fleet;
mod order;
mod pacing;
mod regressions;
mod tenancy;
