//! Idempotency keys: retrying a mutation without repeating its side effect.
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! // A payments API that honours `Idempotency-Key` and answers this one charge with a 503 first.
//! let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
//! let log = seen.clone();
//! let api = service_fn(move |request: Request<Full<Bytes>>| {
//!     let mut keys = log.lock().unwrap();
//!     keys.push(request.headers()["idempotency-key"].clone());
//!     let status = if keys.len() == 1 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::CREATED };
//!     let mut response = Response::new(Full::new(Bytes::new()));
//!     *response.status_mut() = status;
//!     async move { Ok::<_, std::convert::Infallible>(response) }
//! });
//!
//! let client = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryPolicy::default().inject_idempotency_keys()))
//!     .service(api);
//!
//! let charge = Request::post("https://pay.example/v1/charges").body(Full::new(Bytes::from("{}"))).unwrap();
//! let response = client.oneshot(charge).await.unwrap();
//! assert_eq!(response.status(), StatusCode::CREATED);
//!
//! // One key, set before the first attempt and sent verbatim on the retry.
//! let seen = seen.lock().unwrap();
//! let history = response.extensions().get::<RetryHistory>().unwrap();
//! assert_eq!(seen.len(), 2);
//! assert_eq!(seen[0], seen[1]);
//! assert_eq!(history.idempotency_key(), Some(&seen[0]));
//! # }
//! ```
//!
//! # The contract
//!
//! A server that honours idempotency keys runs the side effect of a key once, answers a repeat of a
//! finished one with the stored result (marking it as a replay), answers `409 Conflict` while the first
//! is still running, and `422 Unprocessable Content` when the key comes back with a different payload.
//! Retrying is then safe after any failure, as long as every attempt carries the same key:
//!
//! - A request carrying the key header ([`RetryPolicy::idempotency_header`], `Idempotency-Key` by default)
//!   counts as idempotent: it is retried after 5xx, resets and timeouts like a GET.
//! - `409` with a key is retried with the same key, waiting at least its `Retry-After`; `422` is not.
//! - [`RetryPolicy::inject_idempotency_keys`] gives each POST and PATCH that has no key a fresh one (a
//!   version 4 UUID from the operating system's cryptographic generator) before its first attempt. Every
//!   retry sends the same key, a key the caller set is never replaced (a blank or whitespace-only value
//!   is no key: it is replaced when injection is on, and otherwise leaves the request unkeyed), and no key is ever minted to
//!   force a retry. [`RetryPolicy::seed`] does not touch keys: a seeded key would repeat across runs.
//! - A response marked as a replay (`X-Idempotency-Replayed: true` by default,
//!   [`RetryPolicy::idempotency_replayed_header`]) is reported by [`RetryHistory::is_replayed`]; the key
//!   the request carried is in [`RetryHistory::idempotency_key`], on responses and on errors, so a caller
//!   can try the same operation again later with the same key.
//! - A [`before_retry`](RetryPolicy::before_retry) hook cannot change the key.
//!
//! Turn injection on only for servers that honour the header: a keyed request counts as idempotent, so a
//! server that ignores the key may run a retried POST twice.
//!
//! [`RetryHistory::is_replayed`]: crate::RetryHistory::is_replayed
//! [`RetryHistory::idempotency_key`]: crate::RetryHistory::idempotency_key

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::Method;

use crate::policy::RetryPolicy;

/// The default header marking a replayed response: `X-Idempotency-Replayed`.
pub const DEFAULT_IDEMPOTENCY_REPLAYED_HEADER: HeaderName =
    HeaderName::from_static("x-idempotency-replayed");

/// The methods [`RetryPolicy::inject_idempotency_keys`] gives a key to: POST and PATCH, the ones that
/// are not idempotent by themselves.
pub const DEFAULT_IDEMPOTENCY_KEY_METHODS: [Method; 2] = [Method::POST, Method::PATCH];

/// The idempotency settings of a policy, besides the key header itself (which the classifier also reads,
/// so it lives in one place: `RetryPolicy::idempotency_header`).
#[derive(Clone, Debug)]
pub(crate) struct Idempotency {
    /// The methods whose requests get a key when they carry none; empty when injection is off.
    inject_for: Vec<Method>,
    replayed_header: HeaderName,
}

impl Default for Idempotency {
    fn default() -> Self {
        Self {
            inject_for: Vec::new(),
            replayed_header: DEFAULT_IDEMPOTENCY_REPLAYED_HEADER,
        }
    }
}

impl RetryPolicy {
    /// Gives every POST and PATCH that carries no idempotency key a fresh one before its first attempt,
    /// in the [`idempotency_header`](Self::idempotency_header), and sends it verbatim on every retry.
    ///
    /// Only for servers that honour the header: the request then counts as idempotent and is retried
    /// after failures that may have taken effect. See [`idempotency`](crate::idempotency).
    ///
    /// ```
    /// use http::HeaderName;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::default()
    ///     .idempotency_header(HeaderName::from_static("x-idempotency-key"))
    ///     .inject_idempotency_keys();
    /// # let _ = policy;
    /// ```
    pub fn inject_idempotency_keys(self) -> Self {
        self.inject_idempotency_keys_for(DEFAULT_IDEMPOTENCY_KEY_METHODS)
    }

    /// Like [`inject_idempotency_keys`](Self::inject_idempotency_keys), for requests of these methods.
    /// An empty list turns injection off.
    ///
    /// ```
    /// use http::Method;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// // This API also deduplicates DELETEs that trigger refunds.
    /// let policy = RetryPolicy::default()
    ///     .inject_idempotency_keys_for([Method::POST, Method::PATCH, Method::DELETE]);
    /// # let _ = policy;
    /// ```
    pub fn inject_idempotency_keys_for(
        mut self,
        methods: impl IntoIterator<Item = Method>,
    ) -> Self {
        self.idempotency.inject_for = methods.into_iter().collect();
        self
    }

    /// Recognises a response carrying `header: true` (any case) as the replay of an earlier execution
    /// of the same key; [`RetryHistory::is_replayed`](crate::RetryHistory::is_replayed) reports it.
    ///
    /// ```
    /// use http::HeaderName;
    /// use tower_http_retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::default()
    ///     .idempotency_replayed_header(HeaderName::from_static("idempotent-replayed"));
    /// # let _ = policy;
    /// ```
    pub fn idempotency_replayed_header(mut self, header: HeaderName) -> Self {
        self.idempotency.replayed_header = header;
        self
    }
}

/// Before the first attempt: sets a fresh key on a request that should get one and has none, and
/// returns the key the request carries, if any. The head is then copied, key included, for every retry.
pub(crate) fn key_for_first_attempt(policy: &RetryPolicy, head: &mut Parts) -> Option<HeaderValue> {
    let header = &policy.idempotency_header;
    if let Some(key) = head.headers.get(header).filter(|key| is_key(key)) {
        return Some(key.clone());
    }
    if !policy.idempotency.inject_for.contains(&head.method) {
        return None;
    }
    let key = new_key();
    head.headers.insert(header.clone(), key.clone());
    Some(key)
}

/// Whether a header value is a key: a blank or whitespace-only value is none (a server that ignores blank
/// keys would run a retried request twice).
pub(crate) fn is_key(value: &HeaderValue) -> bool {
    !value.as_bytes().iter().all(u8::is_ascii_whitespace)
}

/// Whether a response is marked as the replay of an earlier execution.
pub(crate) fn is_replayed(policy: &RetryPolicy, headers: &HeaderMap) -> bool {
    headers
        .get(&policy.idempotency.replayed_header)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"true"))
}

/// A fresh key: a version 4 UUID from the operating system's cryptographic generator, lowercase and
/// hyphenated. Marked sensitive: HTTP/2 never puts it in its header compression table (a value sent once
/// would only push useful entries out), and `Debug` output shows `Sensitive` instead of it.
fn new_key() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    let mut key =
        HeaderValue::from_str(text).expect("hex digits and hyphens are a valid header value");
    key.set_sensitive(true);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_IDEMPOTENCY_HEADER;
    use std::collections::HashSet;

    fn head(method: Method) -> Parts {
        http::Request::builder()
            .method(method)
            .uri("http://api.test/v1/charges")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn keys_are_version_4_uuids() {
        for _ in 0..100 {
            let key = new_key();
            let text = key.to_str().unwrap();
            let uuid = uuid::Uuid::parse_str(text).unwrap();
            assert_eq!(uuid.get_version(), Some(uuid::Version::Random), "{text}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{text}");
            assert_eq!(text, text.to_ascii_lowercase());
            assert_eq!(text.len(), 36);
            assert!(key.is_sensitive());
        }
    }

    #[test]
    fn keys_do_not_repeat_even_under_a_seed() {
        let policy = RetryPolicy::default().seed(1).inject_idempotency_keys();
        let same_seed = RetryPolicy::default().seed(1).inject_idempotency_keys();
        let mut keys = HashSet::new();
        for policy in [&policy, &same_seed] {
            for _ in 0..5_000 {
                let key = key_for_first_attempt(policy, &mut head(Method::POST)).unwrap();
                assert!(keys.insert(key), "a key repeated");
            }
        }
    }

    #[test]
    fn injection_is_off_by_default() {
        let mut post = head(Method::POST);
        assert_eq!(
            key_for_first_attempt(&RetryPolicy::default(), &mut post),
            None
        );
        assert!(post.headers.is_empty());
    }

    #[test]
    fn post_and_patch_get_a_key_and_idempotent_methods_do_not() {
        let policy = RetryPolicy::default().inject_idempotency_keys();
        for method in [Method::POST, Method::PATCH] {
            let mut head = head(method);
            let key = key_for_first_attempt(&policy, &mut head).expect("a key");
            assert_eq!(head.headers.get(DEFAULT_IDEMPOTENCY_HEADER), Some(&key));
        }
        for method in [Method::GET, Method::PUT, Method::DELETE, Method::HEAD] {
            let mut head = head(method);
            assert_eq!(key_for_first_attempt(&policy, &mut head), None);
            assert!(head.headers.is_empty());
        }
    }

    #[test]
    fn a_key_set_by_the_caller_is_kept() {
        let policy = RetryPolicy::default().inject_idempotency_keys();
        let mut head = head(Method::POST);
        head.headers.insert(
            DEFAULT_IDEMPOTENCY_HEADER,
            HeaderValue::from_static("order-42"),
        );
        let key = key_for_first_attempt(&policy, &mut head);
        assert_eq!(key, Some(HeaderValue::from_static("order-42")));
        assert_eq!(head.headers.len(), 1);
        assert_eq!(head.headers[DEFAULT_IDEMPOTENCY_HEADER], "order-42");
    }

    #[test]
    fn the_configured_header_and_methods_are_used() {
        let header = HeaderName::from_static("x-idempotency-key");
        let policy = RetryPolicy::default()
            .idempotency_header(header.clone())
            .inject_idempotency_keys_for([Method::DELETE]);
        let mut delete = head(Method::DELETE);
        let key = key_for_first_attempt(&policy, &mut delete).expect("a key");
        assert_eq!(delete.headers.get(&header), Some(&key));
        assert!(!delete.headers.contains_key(DEFAULT_IDEMPOTENCY_HEADER));
        let mut post = head(Method::POST);
        assert_eq!(key_for_first_attempt(&policy, &mut post), None);
        // A key the caller set in the configured header is recognised without injection.
        let mut keyed = head(Method::PATCH);
        keyed
            .headers
            .insert(header.clone(), HeaderValue::from_static("k"));
        assert_eq!(
            key_for_first_attempt(
                &RetryPolicy::default().idempotency_header(header),
                &mut keyed
            ),
            Some(HeaderValue::from_static("k"))
        );
    }

    #[test]
    fn only_true_marks_a_replay() {
        let policy = RetryPolicy::default();
        let custom = RetryPolicy::default()
            .idempotency_replayed_header(HeaderName::from_static("idempotent-replayed"));
        let headers = |name: &'static str, value: &'static str| {
            let mut map = HeaderMap::new();
            map.insert(name, HeaderValue::from_static(value));
            map
        };
        assert!(is_replayed(
            &policy,
            &headers("x-idempotency-replayed", "true")
        ));
        assert!(is_replayed(
            &policy,
            &headers("x-idempotency-replayed", "TRUE")
        ));
        assert!(!is_replayed(
            &policy,
            &headers("x-idempotency-replayed", "false")
        ));
        assert!(!is_replayed(
            &policy,
            &headers("x-idempotency-replayed", "truest")
        ));
        assert!(!is_replayed(&policy, &HeaderMap::new()));
        assert!(!is_replayed(
            &policy,
            &headers("idempotent-replayed", "true")
        ));
        assert!(is_replayed(
            &custom,
            &headers("idempotent-replayed", "true")
        ));
    }
}
