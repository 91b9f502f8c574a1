//! Response bodies: the call's timeout over them (`call_timeout`), draining the discarded ones
//! (`drain`), retrying a stream that breaks before its first byte (`first_byte`), and reading them
//! within the attempt (`buffered` in memory, `buffered_sockets` over real sockets).

use retry_test_support::{bodies, server, watchdog};

mod buffered;
mod buffered_sockets;
mod call_timeout;
mod drain;
mod first_byte;
