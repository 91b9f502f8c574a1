//! Replaying request bodies: the recording against an in-memory service (`recording`) and streamed
//! uploads over real sockets (`sockets`).

#[path = "../support/bodies.rs"]
mod bodies;
#[path = "../support/upload.rs"]
mod upload;

mod recording;
mod sockets;
