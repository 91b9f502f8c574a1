//! The retry budget: through whole calls (`calls`) and shared by a fleet through a
//! store (`fleet`), over TLS too (`tls`).

#[cfg(feature = "redis-tls")]
use retry_test_support::captured;

#[cfg(feature = "redis")]
use retry_test_support::redis_server;

#[cfg(feature = "redis-tls")]
use retry_test_support::redis_tls;

mod calls;
mod fleet;
#[cfg(feature = "redis")]
mod tls;
