//! The layer's core: which calls are retried, after how long, and what the caller gets back; over real
//! sockets (`sockets`), with exact waits under tokio's paused clock (`timing`), and behind a local
//! timeout that answers 408 (`timeout_408`).

#[path = "../support/durations.rs"]
mod durations;
#[path = "../support/history.rs"]
mod history;
#[path = "../support/script.rs"]
mod script;
#[path = "../support/server.rs"]
mod server;

mod sockets;
mod timeout_408;
mod timing;
