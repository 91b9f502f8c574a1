//! Idempotency keys and the before-retry hook: over real sockets (`keys`) and with exact waits under
//! tokio's paused clock (`timing`).

#[path = "../support/durations.rs"]
mod durations;
#[path = "../support/history.rs"]
mod history;
#[path = "../support/script.rs"]
mod script;
#[path = "../support/server.rs"]
mod server;

mod attached;
mod keys;
mod timing;
