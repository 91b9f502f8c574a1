//! A Redis client from a URL: plain (`redis://`), or TLS (`rediss://`, feature `redis-tls`), the
//! server's certificate checked against the system's roots or a CA of the caller's.
//!
//! Every error here is returned by `Store::redis` before anything connects: a URL the store could
//! never use must not turn into a silent fall-back to each process's own budget. No message
//! repeats the URL, which may hold a password.

use redis::Client;

use super::error::StoreError;

/// A client for `url`, trusting `ca` (PEM) instead of the system's roots when given.
pub(crate) fn client(url: &str, ca: Option<&[u8]>) -> Result<Client, StoreError> {
    let scheme = url
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    let tls = matches!(scheme.as_deref(), Some("rediss" | "valkeys"));
    if !tls {
        if ca.is_some() {
            return Err(StoreError::new(
                "redis URL: a CA certificate is for TLS (rediss://) URLs only",
            ));
        }
        return Client::open(url).map_err(|e| StoreError::new(format!("redis URL: {e}")));
    }
    tls_client(url, ca)
}

/// Without the feature, the redis crate may still have TLS turned on by another crate of the
/// application; refusing here keeps what a URL does the same in every build of this crate.
#[cfg(not(feature = "redis-tls"))]
fn tls_client(_url: &str, _ca: Option<&[u8]>) -> Result<Client, StoreError> {
    Err(StoreError::new(
        "redis URL: rediss:// (TLS) needs the `redis-tls` feature of tower-http-retry",
    ))
}

#[cfg(feature = "redis-tls")]
fn tls_client(url: &str, ca: Option<&[u8]>) -> Result<Client, StoreError> {
    use redis::TlsCertificates;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    // Turning certificate checks off is not offered: a server with a certificate of a private
    // CA is trusted by giving that CA (`Store::redis_with_ca`).
    if url
        .rsplit_once('#')
        .is_some_and(|(_, fragment)| fragment == "insecure")
    {
        return Err(StoreError::new(
            "redis URL: #insecure (no certificate check) is not supported; \
             trust the server's CA with Store::redis_with_ca",
        ));
    }
    install_ring_unless_chosen();
    let client = match ca {
        None => Client::open(url),
        Some(pem) => {
            // The redis crate would take a PEM without a certificate as an empty trust store,
            // refusing every server later and silently; say so now instead.
            if CertificateDer::pem_slice_iter(pem).next().is_none() {
                return Err(StoreError::new(
                    "redis CA: no PEM certificate (-----BEGIN CERTIFICATE-----) found",
                ));
            }
            let certificates = TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            };
            Client::build_with_tls(url, certificates)
        }
    };
    client.map_err(|e| StoreError::new(format!("redis URL: {e}")))
}

/// The redis crate builds its TLS settings with rustls's process-wide crypto provider. With ring
/// the only provider compiled in, rustls would install ring itself on first use; with another one
/// compiled in too (aws-lc-rs, through another crate), it would panic in the connection task
/// instead, unless the application chose one. So: ring, when the application has not chosen.
#[cfg(feature = "redis-tls")]
fn install_ring_unless_chosen() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may install one in between: then that one stays, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
