//! Replaying request bodies: the recording against an in-memory service (`recording`) and streamed
//! uploads over real sockets (`sockets`).

use retry_test_support::{bodies, upload};

mod recording;
mod sockets;
