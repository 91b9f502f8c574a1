//! A real nginx for the throttle benchmark: started in the foreground as a child process with a
//! prefix of its own under `target/`, one server per contender on free ports of 127.0.0.1, and
//! stopped when dropped. The configuration is `nginx.conf`, beside this file.

use std::io;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::limiters::Seen;

const TEMPLATE: &str = include_str!("nginx.conf");

/// A running nginx, stopped (and its prefix removed) when dropped.
pub struct Nginx {
    child: Child,
    prefix: PathBuf,
    /// Its servers' ports, one per contender.
    pub ports: Vec<u16>,
    /// Unix time at which the run started, to make log times relative.
    start: f64,
}

fn binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("nginx"))
}

/// A port free now on 127.0.0.1.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Nginx {
    /// Starts nginx with `servers` limited servers and waits until each accepts connections.
    pub fn start(servers: usize) -> io::Result<Self> {
        let prefix =
            std::env::current_dir()?.join(format!("target/throttle-nginx-{}", std::process::id()));
        // A static file: `return` would answer before limit_req runs.
        std::fs::create_dir_all(prefix.join("www"))?;
        std::fs::write(prefix.join("www/items"), "ok\n")?;
        let mut ports = Vec::new();
        let mut blocks = String::new();
        let prefix_str = prefix.to_str().expect("a UTF-8 path").to_owned();
        for i in 0..servers {
            let port = free_port()?;
            let prefix = &prefix_str;
            ports.push(port);
            blocks.push_str(&format!(
                "    limit_req_zone $server_port zone=c{i}:1m rate=10r/s;\n    server {{\n        listen 127.0.0.1:{port};\n        access_log {prefix}/access-{i}.log timed;\n        location / {{\n            limit_req zone=c{i};\n            add_header Retry-After 1 always;\n            root {prefix}/www;\n            default_type text/plain;\n        }}\n    }}\n"
            ));
        }
        let config = TEMPLATE
            .replace("{{SERVERS}}", &blocks)
            .replace("{{PREFIX}}", prefix.to_str().expect("a UTF-8 path"));
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, config)?;
        let child = Command::new(binary())
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf)
            .arg("-g")
            .arg("daemon off;")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "starting nginx ({}): {e}; install it with `apt-get install -y nginx`",
                        binary().display()
                    ),
                )
            })?;
        let mut nginx = Self {
            child,
            prefix,
            ports,
            start: 0.0,
        };
        for port in nginx.ports.clone() {
            let mut tries = 0;
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                tries += 1;
                if tries > 200 {
                    return Err(io::Error::other("nginx did not start"));
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        // The probes above were logged: the run starts after them, each contender past its first
        // token, 150 ms later.
        std::thread::sleep(Duration::from_millis(150));
        nginx.start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        Ok(nginx)
    }

    /// What server `i` saw during the run, from its access log: every attempt less than 1 s after a
    /// 429 it sent (its `Retry-After: 1`) counts as early.
    pub fn log(&self, i: usize) -> io::Result<Vec<Seen>> {
        let text = std::fs::read_to_string(self.prefix.join(format!("access-{i}.log")))?;
        let mut seen = Vec::new();
        let mut given: Option<f64> = None;
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            let (Some(at), Some(status)) = (parts.next(), parts.next()) else {
                continue;
            };
            let (Ok(at), Ok(status)) = (at.parse::<f64>(), status.parse::<u16>()) else {
                continue;
            };
            if at < self.start {
                continue;
            }
            let early = given.is_some_and(|until| at < until);
            if status == 429 {
                given = Some(given.map_or(at + 1.0, |g| g.max(at + 1.0)));
            }
            seen.push(Seen {
                at: Duration::from_secs_f64(at - self.start),
                status,
                early,
            });
        }
        Ok(seen)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
