//! Fleet mode over TLS (`rediss://`): refused without the `redis-tls` feature; with it, against a
//! real TLS-only redis-server with a password and certificates of the test's own CA.

use tower_http_retry::store::Store;

/// Not a password any log line or message may carry.
const PASSWORD: &str = "tls-pa55word";

#[cfg(not(feature = "redis-tls"))]
#[test]
fn rediss_without_the_tls_feature_is_an_error_at_once() {
    // Nothing listens there: the error comes from the URL, before any connection.
    for scheme in ["rediss", "REDISS", "valkeys"] {
        let url = format!("{scheme}://:{PASSWORD}@127.0.0.1:1");
        let error = Store::redis(&url).unwrap_err().to_string();
        assert!(error.contains("redis-tls"), "{error}");
        assert!(!error.contains(PASSWORD), "{error}");
    }
}

#[cfg(feature = "redis-tls")]
mod with_tls {
    use std::time::Duration;

    use super::*;
    use crate::captured::capture;
    use crate::fleet::{budget, drain, T};
    use crate::redis_server::RedisServer;
    use crate::redis_tls::Certificates;

    /// Long enough for the store's task to try a few times (it ticks every 100 ms).
    const SYNC: Duration = Duration::from_millis(350);

    /// Whether `store` is down by `SYNC`, or, on a machine too busy to run its task that soon,
    /// within 5 s: a refused handshake takes the store down whenever the task gets to try.
    async fn goes_down(store: &Store) -> bool {
        tokio::time::sleep(SYNC).await;
        let give_up = tokio::time::Instant::now() + Duration::from_secs(5);
        while !store.is_down() && tokio::time::Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        store.is_down()
    }

    struct Tls {
        server: RedisServer,
        _certificates: Certificates,
        /// The CA that signed the server's certificate, and one that did not.
        ca: Vec<u8>,
        other_ca: Vec<u8>,
    }

    impl Tls {
        fn start() -> Option<Self> {
            let certificates = Certificates::make()?;
            let server = RedisServer::start_tls(certificates.server_args(PASSWORD))?;
            Some(Self {
                server,
                ca: certificates.ca_pem(),
                other_ca: certificates.other_ca_pem(),
                _certificates: certificates,
            })
        }

        fn url(&self, password: &str) -> String {
            format!("rediss://:{password}@127.0.0.1:{}", self.server.port)
        }
    }

    #[tokio::test]
    async fn rediss_with_the_servers_ca_trusted_is_one_fleet() {
        let Some(tls) = Tls::start() else {
            return;
        };
        // Two processes: two stores, each with its own TLS connection; one floor between them.
        // A generous timeout: this is about trust, and a handshake on a busy machine can take
        // longer than the default 50 ms, each process then granting its own floor meanwhile.
        let stores: Vec<_> = (0..2)
            .map(|_| {
                Store::redis_with_ca(&tls.url(PASSWORD), &tls.ca)
                    .unwrap()
                    .timeout(Duration::from_secs(2))
            })
            .collect();
        let a = budget(&stores[0], "api", 1, 0.0);
        let b = budget(&stores[1], "api", 1, 0.0);
        assert_eq!(drain(&[a, b]).await, 1, "one fleet-wide floor");
        assert!(stores.iter().all(|store| !store.is_down()));
    }

    #[tokio::test]
    async fn rediss_refuses_an_untrusted_certificate_and_a_wrong_password() {
        let Some(tls) = Tls::start() else {
            return;
        };
        let untrusted = [
            // The system's roots do not know the test's CA.
            Store::redis(&tls.url(PASSWORD)).unwrap(),
            Store::redis_with_ca(&tls.url(PASSWORD), &tls.other_ca).unwrap(),
            Store::redis_with_ca(&tls.url("wrong"), &tls.ca).unwrap(),
        ];
        for store in untrusted {
            // Each process then decides alone: its own floor of 2, not a shared one.
            let alone = budget(&store, "api", 2, 0.0);
            assert!(goes_down(&store).await, "{store:?}");
            assert_eq!((0..5).filter(|_| alone.try_withdraw(T)).count(), 2);
        }
    }

    #[tokio::test]
    async fn rediss_password_never_shows_in_debug_errors_or_logs() {
        let Some(tls) = Tls::start() else {
            return;
        };
        let (logs, _guard) = capture(tracing::Level::INFO);
        let store = Store::redis_with_ca(&tls.url(PASSWORD), &tls.other_ca).unwrap();
        let _budget = budget(&store, "api", 1, 0.0);
        assert!(goes_down(&store).await);
        let logs = logs.text();
        let shown = format!("rediss://:***@127.0.0.1:{}", tls.server.port);
        assert!(logs.contains("fleet store unreachable"), "{logs}");
        assert!(logs.contains(&shown), "{logs}");
        assert!(format!("{store:?}").contains(&shown));
        let errors = [
            Store::redis(&format!("rediss://:{PASSWORD}@[::1/")),
            Store::redis(&format!("rediss://:{PASSWORD}@127.0.0.1:1/#insecure")),
            Store::redis_with_ca(&tls.url(PASSWORD), b"not a PEM"),
        ];
        for text in errors.into_iter().map(|e| e.unwrap_err().to_string()) {
            assert!(!text.contains(PASSWORD), "{text}");
        }
        for text in [logs, format!("{store:?}")] {
            assert!(!text.contains(PASSWORD), "{text}");
        }
    }

    #[tokio::test]
    async fn rediss_settings_the_store_could_never_use_are_errors_at_once() {
        let ca = Certificates::make().map(|certificates| certificates.ca_pem());
        let Some(ca) = ca else {
            return;
        };
        // Turning certificate checks off is refused, and says what to do instead.
        let error = Store::redis("rediss://127.0.0.1:6380/#insecure").unwrap_err();
        assert!(error.to_string().contains("redis_with_ca"), "{error}");
        // A CA file without a certificate would trust nothing, silently.
        let error = Store::redis_with_ca("rediss://127.0.0.1:6380", b"not a PEM").unwrap_err();
        assert!(error.to_string().contains("CERTIFICATE"), "{error}");
        // A CA for a connection without TLS is a mistake in the settings.
        assert!(Store::redis_with_ca("redis://127.0.0.1:6379", &ca).is_err());
        // With a CA, or with the system's roots, a rediss:// URL is accepted (it connects lazily).
        assert!(Store::redis_with_ca("rediss://127.0.0.1:6380", &ca).is_ok());
        assert!(Store::redis("rediss://127.0.0.1:6380").is_ok());
    }
}
