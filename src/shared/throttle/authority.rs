//! The server part of a scope: scheme, host and port of the URI an attempt goes to, or of its
//! `Host` header when the URI is a path alone.

use std::hash::{Hash, Hasher};

use http::uri::Authority as UriAuthority;
use http::{header, HeaderMap, Uri};

/// Scheme, host and port, the port made explicit, lower-cased. A request that names no server (a
/// path-only URI without `Host`, as tonic's generated clients send to a channel) goes to the
/// service the layer wraps: `origin` tells those services apart, and is 0 for a named server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Authority {
    scheme: Box<str>,
    host: Box<str>,
    port: u16,
    origin: u64,
}

/// The parts of a request that name its server, borrowed.
#[derive(Clone, Copy)]
pub(crate) struct Server<'a> {
    scheme: &'a str,
    host: &'a str,
    port: u16,
    origin: u64,
}

impl<'a> Server<'a> {
    /// The server a request to `uri` with `headers` goes to: the URI's authority, else the `Host`
    /// header's, else the wrapped service `origin` (0: none known, and the request is never
    /// throttled).
    pub(crate) fn of(uri: &'a Uri, headers: Option<&'a HeaderMap>, origin: u64) -> Option<Self> {
        let scheme = uri.scheme_str().unwrap_or("http");
        let (host, port) = match uri.authority() {
            Some(authority) => (authority.host(), authority.port_u16()),
            None => match headers.and_then(host_header) {
                Some((host, port)) => (host, port),
                None if origin != 0 => {
                    return Some(Self {
                        scheme: "",
                        host: "",
                        port: 0,
                        origin,
                    });
                }
                None => return None,
            },
        };
        let port = port.unwrap_or_else(|| default_port(scheme));
        Some(Self {
            scheme,
            host,
            port,
            origin: 0,
        })
    }

    /// Feeds the server to `hasher`, case folded, without allocating.
    pub(crate) fn hash(&self, hasher: &mut impl Hasher) {
        for part in [self.scheme, self.host] {
            for byte in part.bytes() {
                hasher.write_u8(byte.to_ascii_lowercase());
            }
            hasher.write_u8(0xff);
        }
        self.port.hash(hasher);
        self.origin.hash(hasher);
    }

    pub(crate) fn to_owned(self) -> Authority {
        Authority {
            scheme: self.scheme.to_ascii_lowercase().into(),
            host: self.host.to_ascii_lowercase().into(),
            port: self.port,
            origin: self.origin,
        }
    }
}

impl Authority {
    /// `scheme://host:port`, the name of its schedule in a fleet's store; a wrapped service's
    /// `origin:N`, which no other process shares.
    pub(crate) fn key(&self) -> String {
        match self.origin {
            0 => format!("{}://{}:{}", self.scheme, self.host, self.port),
            origin => format!("origin:{origin}"),
        }
    }

    /// The authority a schedule's name gives (the inverse of [`key`](Self::key)).
    pub(crate) fn parse(key: &str) -> Option<Self> {
        let uri: Uri = key.parse().ok()?;
        Server::of(&uri, None, 0).map(Server::to_owned)
    }
}

/// The host and port of a `Host` header that parses as an authority.
fn host_header(headers: &HeaderMap) -> Option<(&str, Option<u16>)> {
    let value = headers.get(header::HOST)?.to_str().ok()?;
    // Parsed for validation only: the slices are taken from the header itself.
    let parsed: UriAuthority = value.parse().ok()?;
    let port = parsed.port_u16();
    let host = match port {
        Some(_) => value.rsplit_once(':').map_or(value, |(host, _)| host),
        None => value,
    };
    (!host.is_empty() && !value.contains('@')).then_some((host, port))
}

fn default_port(scheme: &str) -> u16 {
    if scheme.eq_ignore_ascii_case("https") {
        443
    } else if scheme.eq_ignore_ascii_case("http") {
        80
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::DefaultHasher;

    use http::HeaderValue;

    use super::*;

    fn digest(uri: &str, host: Option<&'static str>, origin: u64) -> Option<u64> {
        let uri: Uri = uri.parse().unwrap();
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(header::HOST, HeaderValue::from_static(host));
        }
        let server = Server::of(&uri, Some(&headers), origin)?;
        let mut hasher = DefaultHasher::new();
        server.hash(&mut hasher);
        Some(hasher.finish())
    }

    #[test]
    fn scheme_host_and_port_make_the_server() {
        let api = digest("https://api.test/a", None, 0).unwrap();
        for same in [
            "https://api.test/b?q=1",
            "https://API.TEST/",
            "https://api.test:443/",
        ] {
            assert_eq!(digest(same, None, 0), Some(api), "{same}");
        }
        for other in [
            "http://api.test/",
            "https://api.test:8443/",
            "https://other.test/",
        ] {
            assert_ne!(digest(other, None, 0), Some(api), "{other}");
        }
    }

    #[test]
    fn a_path_alone_goes_to_its_host_header_or_else_to_the_wrapped_service() {
        let named = digest("http://api.test:8080/x", None, 0);
        assert_eq!(digest("/x", Some("API.test:8080"), 0), named);
        assert_eq!(digest("/x", Some("api.test:8080"), 7), named, "Host wins");
        assert_eq!(digest("/x", None, 0), None, "nothing names a server");
        assert!(digest("/x", None, 7).is_some());
        assert_ne!(digest("/x", None, 7), digest("/x", None, 8));
        assert_eq!(
            digest("/x", Some("user@evil:1"), 0),
            None,
            "not an authority"
        );
    }

    #[test]
    fn a_key_parses_back_to_its_authority() {
        let uri: Uri = "https://API.test/v1".parse().unwrap();
        let authority = Server::of(&uri, None, 0).unwrap().to_owned();
        assert_eq!(authority.key(), "https://api.test:443");
        assert_eq!(Authority::parse(&authority.key()), Some(authority));
    }
}
