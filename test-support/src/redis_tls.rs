//! Certificates for a TLS redis-server, made by the `openssl` CLI in a directory of the test's own
//! (removed when dropped: keep it while the server runs): a CA, a certificate it signs for 127.0.0.1, and a CA that signs nothing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A CA, a certificate it signs for 127.0.0.1 and a CA that signs nothing, in a directory removed when dropped.
pub struct Certificates {
    dir: PathBuf,
}

impl Certificates {
    /// `None` (with a message) when openssl is missing; a failure instead when `CI` is set.
    pub fn make() -> Option<Self> {
        if Command::new("openssl")
            .arg("version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            crate::redis_server::skip("openssl is not installed (apt-get install openssl)");
            return None;
        }
        static MADE: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tower-http-retry-tls-{}-{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let certificates = Self { dir };
        certificates.ca("ca", "test CA");
        certificates.ca("other-ca", "a CA that signed nothing here");
        certificates.openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            certificates.dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        certificates.openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "server.ext",
        ]);
        Some(certificates)
    }

    fn ca(&self, name: &str, subject: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-subj",
            &format!("/CN={subject}"),
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// redis-server's arguments for its certificate, and for `requirepass password`. Clients
    /// show no certificate of their own.
    pub fn server_args(&self, password: &str) -> Vec<OsString> {
        let file = |name: &str| self.dir.join(name).into_os_string();
        vec![
            "--tls-cert-file".into(),
            file("server.crt"),
            "--tls-key-file".into(),
            file("server.key"),
            "--tls-ca-cert-file".into(),
            file("ca.crt"),
            "--tls-auth-clients".into(),
            "no".into(),
            "--requirepass".into(),
            password.into(),
        ]
    }

    /// The PEM of the CA that signed the server's certificate.
    pub fn ca_pem(&self) -> Vec<u8> {
        read(&self.dir.join("ca.crt"))
    }

    /// The PEM of a CA that signed nothing here.
    pub fn other_ca_pem(&self) -> Vec<u8> {
        read(&self.dir.join("other-ca.crt"))
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
