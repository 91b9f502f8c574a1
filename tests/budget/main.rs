//! The retry budget: through whole calls (`calls`) and shared by a fleet through a
//! store (`fleet`), over TLS too (`tls`).

#[cfg(feature = "redis-tls")]
#[path = "../observability/captured.rs"]
mod captured;
#[cfg(feature = "redis")]
#[path = "../support/redis_server.rs"]
mod redis_server;
#[cfg(feature = "redis-tls")]
#[path = "../support/redis_tls.rs"]
mod redis_tls;

mod calls;
mod fleet;
#[cfg(feature = "redis")]
mod tls;
