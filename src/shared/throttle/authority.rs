//! The key the throttle keeps its state under: scheme, host and port of the URI an attempt goes to.

use http::Uri;

/// Scheme, host and port, the port made explicit; compared without regard to ASCII case.
#[derive(Clone, Debug)]
pub(crate) struct Authority {
    scheme: Box<str>,
    host: Box<str>,
    port: u16,
}

impl Authority {
    /// The authority of `uri`: scheme (http when absent), host, and port (the scheme's default when
    /// absent). `None` without a host: such a request is never throttled.
    pub(crate) fn of(uri: &Uri) -> Option<Self> {
        let (scheme, host, port) = parts(uri)?;
        Some(Self {
            scheme: scheme.to_ascii_lowercase().into(),
            host: host.to_ascii_lowercase().into(),
            port,
        })
    }

    /// Whether `uri` goes to this authority; allocates nothing.
    pub(crate) fn is(&self, uri: &Uri) -> bool {
        parts(uri).is_some_and(|(scheme, host, port)| {
            self.port == port
                && self.scheme.eq_ignore_ascii_case(scheme)
                && self.host.eq_ignore_ascii_case(host)
        })
    }

    /// `scheme://host:port`, the name of its schedule in a fleet's store.
    pub(crate) fn key(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }

    pub(crate) fn same(&self, other: &Self) -> bool {
        self.port == other.port && self.scheme == other.scheme && self.host == other.host
    }
}

fn parts(uri: &Uri) -> Option<(&str, &str, u16)> {
    let host = uri.host()?;
    let scheme = uri.scheme_str().unwrap_or("http");
    let port = uri.port_u16().unwrap_or_else(|| {
        if scheme.eq_ignore_ascii_case("https") {
            443
        } else if scheme.eq_ignore_ascii_case("http") {
            80
        } else {
            0
        }
    });
    Some((scheme, host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_host_and_port_make_the_authority() {
        let api = Authority::of(&Uri::from_static("https://api.test/a")).unwrap();
        for same in [
            "https://api.test/b?q=1",
            "https://API.TEST/",
            "https://api.test:443/",
        ] {
            assert!(api.is(&same.parse().unwrap()), "{same}");
        }
        for other in [
            "http://api.test/",
            "https://api.test:8443/",
            "https://other.test/",
            "/relative",
        ] {
            assert!(!api.is(&other.parse().unwrap()), "{other}");
        }
    }
}
