//! Response bodies: the call's timeout over them (`call_timeout`), draining the discarded ones
//! (`drain`) and retrying a stream that breaks before its first byte (`first_byte`).

#[path = "../support/bodies.rs"]
mod bodies;
#[path = "../support/server.rs"]
mod server;
#[path = "../support/watchdog.rs"]
mod watchdog;

mod call_timeout;
mod drain;
mod first_byte;
