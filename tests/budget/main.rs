//! The retry budget: through whole calls (`calls`) and shared by a fleet through a store (`fleet`).

#[cfg(feature = "redis")]
#[path = "../support/redis_server.rs"]
mod redis_server;

mod calls;
mod fleet;
