//! The before-retry hook: rewrites the head of each retry (re-sign it, number the attempt), never the
//! idempotency key.

use http::header::{HeaderMap, HeaderName};
use http::request::Parts;

pub(crate) type BeforeRetryFn = dyn Fn(&mut Parts, u32) + Send + Sync;

/// The head for retry attempt `attempt`: a copy of the first attempt's, through the hook if there is
/// one, with the idempotency key as the first attempt carried it.
///
/// The head of attempt `attempt`: a copy of the first one, rewritten by the hook for a retry, with the
/// idempotency key (`key_header`) of the first attempt kept whatever the hook did.
///
/// A retry's head is made when its own wait ends, before the throttle admits it, so that the throttle
/// sees where it goes.
pub(crate) fn head_for_retry(
    hook: Option<&BeforeRetryFn>,
    key_header: &HeaderName,
    first: &Parts,
    attempt: u32,
) -> Parts {
    let mut head = first.clone();
    if let Some(hook) = hook.filter(|_| attempt > 1) {
        hook(&mut head, attempt);
        keep_key(&mut head.headers, &first.headers, key_header);
    }
    head
}

/// Puts every value of the key header back as it was in `first`, if the hook changed any.
fn keep_key(headers: &mut HeaderMap, first: &HeaderMap, key: &HeaderName) {
    if headers.get_all(key).iter().eq(first.get_all(key)) {
        return;
    }
    tracing::warn!(header = %key, "the before-retry hook changed the idempotency key; restored");
    headers.remove(key);
    for value in first.get_all(key) {
        headers.append(key.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::idempotency::DEFAULT_IDEMPOTENCY_HEADER as KEY;
    use http::HeaderValue;

    fn first(key: Option<&'static str>) -> Parts {
        let mut builder = http::Request::post("http://api.test/v1/charges");
        if let Some(key) = key {
            builder = builder.header(KEY, key);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn without_a_hook_the_retry_is_the_first_head() {
        let first = first(Some("k-1"));
        let retry = head_for_retry(None, &KEY, &first, 2);
        assert_eq!(retry.headers, first.headers);
        assert_eq!(retry.uri, first.uri);
    }

    #[test]
    fn the_hook_rewrites_a_copy_and_cannot_touch_the_key() {
        let hook = |head: &mut Parts, attempt: u32| {
            head.headers.insert("x-attempt", HeaderValue::from(attempt));
            head.headers.insert(KEY, HeaderValue::from_static("forced"));
        };
        let first = first(Some("k-1"));
        let retry = head_for_retry(Some(&hook), &KEY, &first, 3);
        assert_eq!(retry.headers["x-attempt"], "3");
        assert_eq!(retry.headers[KEY], "k-1");
        assert_eq!(retry.headers.get_all(KEY).iter().count(), 1);
        assert!(
            !first.headers.contains_key("x-attempt"),
            "the first head is untouched"
        );
    }

    #[test]
    fn a_removed_key_comes_back_and_an_added_one_goes() {
        let remove = |head: &mut Parts, _: u32| {
            head.headers.remove(KEY);
        };
        assert_eq!(
            head_for_retry(Some(&remove), &KEY, &first(Some("k-1")), 2).headers[KEY],
            "k-1"
        );

        let add = |head: &mut Parts, _: u32| {
            head.headers.append(KEY, HeaderValue::from_static("minted"));
        };
        assert!(!head_for_retry(Some(&add), &KEY, &first(None), 2)
            .headers
            .contains_key(KEY));
        let both = head_for_retry(Some(&add), &KEY, &first(Some("k-1")), 2);
        assert_eq!(
            both.headers.get_all(KEY).iter().collect::<Vec<_>>(),
            [&HeaderValue::from_static("k-1")]
        );
    }
}
