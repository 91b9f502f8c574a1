//! A redis-server of the test's own, on a free port of 127.0.0.1, killed when dropped; plain, or
//! TLS-only with a password (`start_tls`). The fleet example and the benchmarks (`peers/`) use it
//! too.

use std::ffi::OsString;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running redis-server, killed when dropped.
pub struct RedisServer {
    /// The port it listens on (TLS only when started with `start_tls`).
    pub port: u16,
    child: Option<Child>,
    /// TLS only (`--port 0`): the certificates' and the password's arguments.
    tls: Option<Vec<OsString>>,
}

const BINARY: &str = "redis-server";

impl RedisServer {
    /// `None` (with a message) when redis-server is missing; a failure instead when `CI` is set.
    pub fn start() -> Option<Self> {
        if !installed() {
            return None;
        }
        let mut server = Self {
            port: free_port(),
            child: None,
            tls: None,
        };
        server.restart();
        Some(server)
    }

    /// A server that speaks TLS only, started with `tls_args` (its certificates, a password: see
    /// `redis_tls`). `None` (with a message) when redis-server is missing, or when it was built
    /// without TLS; a failure instead when `CI` is set.
    pub fn start_tls(tls_args: Vec<OsString>) -> Option<Self> {
        if !installed() {
            return None;
        }
        let mut server = Self {
            port: free_port(),
            child: None,
            tls: Some(tls_args),
        };
        // Debian's redis-server speaks TLS; a build without it ends at once or answers in clear.
        match server.spawn() {
            Ok(()) if server.speaks_tls() => Some(server),
            Ok(()) => {
                skip("this redis-server does not speak TLS (built without it)");
                None
            }
            Err(error) => {
                skip(&format!("{error} with --tls-port: built without TLS?"));
                None
            }
        }
    }

    /// Whether a TLS handshake with it completes (whoever signed its certificate).
    fn speaks_tls(&self) -> bool {
        Command::new("openssl")
            .args(["s_client", "-brief", "-connect"])
            .arg(format!("127.0.0.1:{}", self.port))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Starts it (again) on its port, and waits until it accepts connections.
    pub fn restart(&mut self) {
        if let Err(error) = self.spawn() {
            panic!("{error}");
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        self.kill();
        let mut command = Command::new(BINARY);
        command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null());
        if let Some(tls_args) = &self.tls {
            // Its own port only for TLS: a plain connection finds nothing.
            command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .args(tls_args);
        }
        if !command.get_args().any(|arg| arg == "--tls-port") {
            command.args(["--port", &self.port.to_string()]);
        }
        let mut child = command.spawn().unwrap();
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("redis-server ended as it started ({status})"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("redis-server did not start on port {}", self.port))
    }

    /// Stops it (SIGKILL); `restart` starts it again on the same port.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`).
    pub fn pause(&self, stop: bool) {
        let signal = if stop { "-STOP" } else { "-CONT" };
        Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether redis-server is installed; when it is not, says so, or fails when `CI` is set.
pub fn installed() -> bool {
    let installed = Command::new(BINARY)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !installed {
        skip("redis-server is not installed (apt-get install redis-server)");
    }
    installed
}

/// Says why a test does not run, or fails it when `CI` is set (CI installs what it needs).
pub fn skip(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{why}, and CI is set: nothing may be skipped"
    );
    eprintln!("skipped: {why}");
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.pause(false);
        }
        self.kill();
    }
}
