//! Response bodies: the call's timeout over them (`call_timeout`), draining the discarded ones
//! (`drain`) and retrying a stream that breaks before its first byte (`first_byte`).

use retry_test_support::{bodies, server, watchdog};

mod call_timeout;
mod drain;
mod first_byte;
