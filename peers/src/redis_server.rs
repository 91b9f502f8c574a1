//! A redis-server of the benchmark's own, on a free port of 127.0.0.1, killed when dropped (the
//! tests' helper, `tests/support/redis_server.rs`, without its faults).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BINARY: &str = "redis-server";

/// A running redis-server, killed when dropped.
pub struct RedisServer {
    port: u16,
    child: Child,
}

/// Whether redis-server is installed. When it is not: a message, or a failure when `CI` is set
/// (CI installs it, so a missing one there is a broken set-up, not a reason to skip).
pub fn installed() -> bool {
    let installed = Command::new(BINARY)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is missing and CI is set: install it (apt-get install redis-server)"
        );
        eprintln!("skipped: redis-server is not installed (apt-get install redis-server)");
    }
    installed
}

impl RedisServer {
    /// Starts one and waits until it accepts connections; `None` when it is not [installed].
    pub fn start() -> Option<Self> {
        if !installed() {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(BINARY)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let server = Self { port, child };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not start on port {port}");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
