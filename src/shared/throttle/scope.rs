//! Quota scopes: what a throttling answer is about. A server limits per credential far more often
//! than per host, so by default a scope is the server plus the request's credential (hashed): one
//! key's limit never paces or holds another key's requests, and processes sharing a key share its
//! scope. [`Throttle::scope_by`](super::Throttle::scope_by) narrows it further (per model, per
//! endpoint, per tenant header).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, Method, Request, Uri};
use uuid::Uuid;

use super::authority::{Authority, Server};

/// The headers that carry a credential, in the forms the large APIs use: `Authorization` (bearer
/// tokens, basic auth), `x-api-key` (Anthropic, AWS API Gateway), `api-key` (Azure OpenAI),
/// `x-goog-api-key` (Google), `Ocp-Apim-Subscription-Key` (Azure API Management).
pub(crate) const CREDENTIAL_HEADERS: [HeaderName; 5] = [
    AUTHORIZATION,
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("api-key"),
    HeaderName::from_static("x-goog-api-key"),
    HeaderName::from_static("ocp-apim-subscription-key"),
];

/// What a request's quota scope is narrowed by, past its server and credential.
pub(crate) type ScopeFn = Arc<dyn Fn(&Uri, &HeaderMap) -> Option<String> + Send + Sync>;

/// What the throttle can tell a scope from: a [`Uri`] alone (the server, no credential), or a
/// request or its head (the server, its `Host` header for a path-only URI, and its credential).
///
/// ```
/// use http::Request;
/// use tower_http_retry::throttle::Throttle;
///
/// let throttle = Throttle::new();
/// let request = Request::get("https://api.example/v1")
///     .header("x-api-key", "k-123")
///     .body(())
///     .unwrap();
/// assert_eq!(throttle.rate(&request), None, "not throttled");
/// assert_eq!(throttle.rate(request.uri()), None);
/// ```
pub trait Target: sealed::Sealed {
    #[doc(hidden)]
    fn target(&self) -> (&Uri, Option<&HeaderMap>);
}

mod sealed {
    pub trait Sealed {}
}

impl sealed::Sealed for Uri {}
impl Target for Uri {
    fn target(&self) -> (&Uri, Option<&HeaderMap>) {
        (self, None)
    }
}

impl sealed::Sealed for http::request::Parts {}
impl Target for http::request::Parts {
    fn target(&self) -> (&Uri, Option<&HeaderMap>) {
        (&self.uri, Some(&self.headers))
    }
}

impl<B> sealed::Sealed for Request<B> {}
impl<B> Target for Request<B> {
    fn target(&self) -> (&Uri, Option<&HeaderMap>) {
        (self.uri(), Some(self.headers()))
    }
}

/// How a throttle finds scopes: the keyed hash its map uses, and what narrows a scope.
#[derive(Clone)]
pub(crate) struct Scoping {
    hasher: RandomState,
    by: Option<ScopeFn>,
    /// Keys derive from the scope's name, so that a fleet's names map back to them.
    named: bool,
}

/// A request's scope, as found: its key in the throttle's map, and what a lane made for it keeps.
pub(crate) struct Scope<'a> {
    pub(crate) key: u64,
    server: Server<'a>,
    headers: Option<&'a HeaderMap>,
    narrowed: Option<String>,
    name: Option<String>,
}

impl Scoping {
    pub(crate) fn new(by: Option<ScopeFn>, named: bool) -> Self {
        Self {
            hasher: RandomState::new(),
            by,
            named,
        }
    }

    /// The scope of a request to `uri` with `headers` through the service `origin`; `None` when
    /// nothing names its server.
    pub(crate) fn of<'a>(
        &self,
        uri: &'a Uri,
        headers: Option<&'a HeaderMap>,
        origin: u64,
    ) -> Option<Scope<'a>> {
        let server = Server::of(uri, headers, origin)?;
        let narrowed = match (&self.by, headers) {
            (Some(by), Some(headers)) => by(uri, headers),
            _ => None,
        };
        let mut scope = Scope {
            key: 0,
            server,
            headers,
            narrowed,
            name: None,
        };
        scope.key = match self.named {
            true => {
                let name = scope.name();
                let key = self.key_of_name(&name);
                scope.name = Some(name);
                key
            }
            false => {
                let mut hasher = self.hasher.build_hasher();
                server.hash(&mut hasher);
                scope.parts(|part| {
                    hasher.write(part);
                    hasher.write_u8(0xff);
                });
                hasher.finish()
            }
        };
        Some(scope)
    }

    /// The key of a route of the scope keyed `scope`: requests with `method` to `path`.
    pub(crate) fn route_of(&self, scope: u64, method: &Method, path: &str) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        hasher.write_u64(scope);
        hasher.write(method.as_str().as_bytes());
        hasher.write_u8(0xff);
        hasher.write(path.as_bytes());
        hasher.finish()
    }

    /// The key of the scope a fleet's schedule `name` stands for.
    pub(crate) fn key_of_name(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }
}

impl Scope<'_> {
    /// What identifies the scope past its server: each credential header's name and value, then
    /// what [`scope_by`](super::Throttle::scope_by) said.
    fn parts(&self, mut each: impl FnMut(&[u8])) {
        if let Some(headers) = self.headers {
            // Most requests carry one credential header or none: one pass over a short map.
            if !headers.is_empty() {
                for name in &CREDENTIAL_HEADERS {
                    for value in headers.get_all(name) {
                        each(name.as_str().as_bytes());
                        each(value.as_bytes());
                    }
                }
            }
        }
        if let Some(narrowed) = &self.narrowed {
            each(b"scope");
            each(narrowed.as_bytes());
        }
    }

    /// The scope's name, the same in every process: its server's, then a digest (name-based UUID,
    /// SHA-1) of its credential and narrowing, so that no credential is kept or shown in clear.
    pub(crate) fn name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let server = self.server.to_owned().key();
        let mut bytes = Vec::new();
        self.parts(|part| {
            bytes.extend_from_slice(&(part.len() as u64).to_be_bytes());
            bytes.extend_from_slice(part);
        });
        match bytes.is_empty() {
            true => server,
            false => {
                let digest = Uuid::new_v5(&Uuid::NAMESPACE_URL, &bytes);
                format!("{server}#{}", digest.simple())
            }
        }
    }

    pub(crate) fn authority(&self) -> Authority {
        self.server.to_owned()
    }
}

impl fmt::Debug for Scoping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scoping")
            .field("narrowed", &self.by.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, headers: &[(&'static str, &'static str)]) -> http::request::Parts {
        let mut builder = Request::get(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn key(scoping: &Scoping, parts: &http::request::Parts) -> u64 {
        scoping.of(&parts.uri, Some(&parts.headers), 0).unwrap().key
    }

    #[test]
    fn each_credential_is_a_scope_of_its_own() {
        let scoping = Scoping::new(None, false);
        let bare = key(&scoping, &request("https://api.test/a", &[]));
        let alice = key(
            &scoping,
            &request("https://api.test/a", &[("authorization", "Bearer alice")]),
        );
        let bob = key(
            &scoping,
            &request("https://api.test/b", &[("authorization", "Bearer bob")]),
        );
        let keyed = key(
            &scoping,
            &request("https://api.test/", &[("x-api-key", "k1")]),
        );
        assert_eq!(
            alice,
            key(
                &scoping,
                &request(
                    "https://API.test:443/other",
                    &[("authorization", "Bearer alice")]
                )
            ),
            "one key, one scope, whatever the path"
        );
        let all = [bare, alice, bob, keyed];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn a_scope_by_function_narrows_the_scope() {
        let by: ScopeFn =
            Arc::new(|uri: &Uri, _: &HeaderMap| uri.path().split('/').nth(2).map(str::to_owned));
        let scoping = Scoping::new(Some(by), false);
        let a = key(&scoping, &request("https://api.test/models/a/x", &[]));
        let a2 = key(&scoping, &request("https://api.test/models/a/y", &[]));
        let b = key(&scoping, &request("https://api.test/models/b/x", &[]));
        assert_eq!(a, a2);
        assert_ne!(a, b);
    }

    #[test]
    fn names_are_the_same_in_every_process_and_show_no_credential() {
        let parts = request("https://api.test/", &[("authorization", "Bearer s3cret")]);
        let one = Scoping::new(None, true);
        let other = Scoping::new(None, true);
        let a = one.of(&parts.uri, Some(&parts.headers), 0).unwrap();
        let b = other.of(&parts.uri, Some(&parts.headers), 0).unwrap();
        assert_eq!(a.name(), b.name());
        assert!(
            a.name().starts_with("https://api.test:443#"),
            "{}",
            a.name()
        );
        assert!(!a.name().contains("s3cret"));
        assert_eq!(
            one.key_of_name(&a.name()),
            a.key,
            "a fleet's name finds the key"
        );
        let bare = request("https://api.test/", &[]);
        let c = one.of(&bare.uri, Some(&bare.headers), 0).unwrap();
        assert_eq!(c.name(), "https://api.test:443");
    }
}
