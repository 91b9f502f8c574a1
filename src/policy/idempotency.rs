//! Idempotency keys: the settings, the key set before the first attempt, and the replay mark.

use crate::classify::is_key;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::Method;

/// The default idempotency key header: `Idempotency-Key`, as in the IETF draft.
pub(crate) const DEFAULT_IDEMPOTENCY_HEADER: HeaderName =
    HeaderName::from_static("idempotency-key");
/// The default header marking a replayed response: `X-Idempotency-Replayed`.
pub(crate) const DEFAULT_IDEMPOTENCY_REPLAYED_HEADER: HeaderName =
    HeaderName::from_static("x-idempotency-replayed");

/// The methods [`RetryPolicy::inject_idempotency_keys`] gives a key to: POST and PATCH, the ones that
/// are not idempotent by themselves.
pub(crate) const DEFAULT_IDEMPOTENCY_KEY_METHODS: [Method; 2] = [Method::POST, Method::PATCH];

/// The idempotency settings of a policy: the key header, the keys the layer sets, and the mark of a
/// replayed response.
#[derive(Clone, Debug)]
pub(crate) struct Idempotency {
    /// The header that carries a request's key; a request with one is safe to send again.
    pub(crate) header: HeaderName,
    /// The methods whose requests get a key when they carry none; empty when injection is off.
    pub(crate) inject_for: Vec<Method>,
    /// The response header whose `true` says the server replayed an earlier execution of the key.
    pub(crate) replayed_header: HeaderName,
}

impl Default for Idempotency {
    fn default() -> Self {
        Self {
            header: DEFAULT_IDEMPOTENCY_HEADER,
            inject_for: Vec::new(),
            replayed_header: DEFAULT_IDEMPOTENCY_REPLAYED_HEADER,
        }
    }
}

/// Whether the policy gives requests of `method` a key when they carry none: then the key is set
/// before the first attempt, which must carry it.
#[inline]
pub(crate) fn injects_for(settings: &Idempotency, method: &Method) -> bool {
    settings.inject_for.contains(method)
}

/// The key a request head carries in `header`, if any (a blank value is none).
pub(crate) fn key_of(header: &HeaderName, head: &Parts) -> Option<HeaderValue> {
    head.headers.get(header).filter(|key| is_key(key)).cloned()
}

/// Before the first attempt of a request whose method gets keys ([`injects_for`]): sets a fresh key
/// on it if it has none, and returns the key it carries. The head is then copied, key included, for
/// every retry, and whether the key is a fresh one. `header` is the policy's key header, which the
/// classifier reads too.
pub(crate) fn key_for_first_attempt(header: &HeaderName, head: &mut Parts) -> (HeaderValue, bool) {
    if let Some(key) = key_of(header, head) {
        return (key, false);
    }
    let key = new_key();
    head.headers.insert(header.clone(), key.clone());
    (key, true)
}

/// Whether a response is marked as the replay of an earlier execution.
pub(crate) fn is_replayed(settings: &Idempotency, headers: &HeaderMap) -> bool {
    headers
        .get(&settings.replayed_header)
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
    use crate::policy::RetryPolicy;

    // The policy is the easiest way to build the settings, as users do.
    fn key_for(policy: &RetryPolicy, head: &mut Parts) -> Option<HeaderValue> {
        match injects_for(&policy.idempotency, &head.method) {
            true => Some(key_for_first_attempt(&policy.idempotency.header, head).0),
            false => key_of(&policy.idempotency.header, head),
        }
    }

    fn replayed(policy: &RetryPolicy, headers: &HeaderMap) -> bool {
        is_replayed(&policy.idempotency, headers)
    }
    use crate::policy::idempotency::DEFAULT_IDEMPOTENCY_HEADER;
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
                let key = key_for(policy, &mut head(Method::POST)).unwrap();
                assert!(keys.insert(key), "a key repeated");
            }
        }
    }

    #[test]
    fn injection_is_off_by_default() {
        let mut post = head(Method::POST);
        assert_eq!(key_for(&RetryPolicy::default(), &mut post), None);
        assert!(post.headers.is_empty());
    }

    #[test]
    fn post_and_patch_get_a_key_and_idempotent_methods_do_not() {
        let policy = RetryPolicy::default().inject_idempotency_keys();
        for method in [Method::POST, Method::PATCH] {
            let mut head = head(method);
            let key = key_for(&policy, &mut head).expect("a key");
            assert_eq!(head.headers.get(DEFAULT_IDEMPOTENCY_HEADER), Some(&key));
        }
        for method in [Method::GET, Method::PUT, Method::DELETE, Method::HEAD] {
            let mut head = head(method);
            assert_eq!(key_for(&policy, &mut head), None);
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
        let key = key_for(&policy, &mut head);
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
        let key = key_for(&policy, &mut delete).expect("a key");
        assert_eq!(delete.headers.get(&header), Some(&key));
        assert!(!delete.headers.contains_key(DEFAULT_IDEMPOTENCY_HEADER));
        let mut post = head(Method::POST);
        assert_eq!(key_for(&policy, &mut post), None);
        // A key the caller set in the configured header is recognised without injection.
        let mut keyed = head(Method::PATCH);
        keyed
            .headers
            .insert(header.clone(), HeaderValue::from_static("k"));
        assert_eq!(
            key_for(
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
        assert!(replayed(
            &policy,
            &headers("x-idempotency-replayed", "true")
        ));
        assert!(replayed(
            &policy,
            &headers("x-idempotency-replayed", "TRUE")
        ));
        assert!(!replayed(
            &policy,
            &headers("x-idempotency-replayed", "false")
        ));
        assert!(!replayed(
            &policy,
            &headers("x-idempotency-replayed", "truest")
        ));
        assert!(!replayed(&policy, &HeaderMap::new()));
        assert!(!replayed(&policy, &headers("idempotent-replayed", "true")));
        assert!(replayed(&custom, &headers("idempotent-replayed", "true")));
    }
}
