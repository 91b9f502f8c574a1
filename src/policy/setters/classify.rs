//! What to retry: the classifier hook, and the status shortcuts for the shapes vendor guidance takes
//! most often ("retry exactly these statuses", "every 5xx except these", "never these").
//!
//! The status shortcuts are classifiers layered over whatever was set before them: each one answers
//! the outcomes it names and hands every other outcome to the earlier shortcut or
//! [`classify_with`](RetryPolicy::classify_with) hook, and finally to the default table. A later
//! `classify_with` replaces them all.

use std::sync::Arc;

use http::StatusCode;

use crate::classify::{Decision, Outcome, RequestInfo, RetryClass};
use crate::policy::retry_policy::RetryPolicy;

/// What to retry: a classifier of your own, or the statuses to retry or not.
impl RetryPolicy {
    /// Decides what is retryable with `hook` first: `Some` is the decision, `None` falls back to the
    /// default table ([`classify::default_decision`](crate::classify::default_decision)).
    ///
    /// ```
    /// use tower_http_retry::classify::{Decision, Outcome, RetryClass};
    /// use tower_http_retry::RetryPolicy;
    ///
    /// // This API also answers 520 when an upstream is briefly away.
    /// let policy = RetryPolicy::default().classify_with(|_request, outcome| match outcome {
    ///     Outcome::Response { status, .. } if status.as_u16() == 520 => {
    ///         Some(Decision::Retry(RetryClass::Transient))
    ///     }
    ///     _ => None,
    /// });
    /// # let _ = policy;
    /// ```
    pub fn classify_with<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RequestInfo<'_>, &Outcome<'_>) -> Option<Decision> + Send + Sync + 'static,
    {
        self.classify = Some(Arc::new(hook));
        self
    }

    /// Retries these statuses and no other outcome: any other status, a transport error or a timeout
    /// is returned to the caller. A listed status is retried with the default table's care for side
    /// effects: 429 (the server did not act) for any method, any other status (408 included: a timeout
    /// layer may have made it after the server ran the request) only when the request is idempotent or
    /// carries a key. 429 and 409 are throttling, the rest transient.
    ///
    /// ```
    /// use tower_http_retry::RetryPolicy;
    ///
    /// // "The SDK retries rate-limited (HTTP 429) requests automatically. Everything else is up to you."
    /// let policy = RetryPolicy::default().retry_only_statuses([429]);
    /// # let _ = policy;
    /// ```
    pub fn retry_only_statuses(self, statuses: impl IntoIterator<Item = u16>) -> Self {
        let statuses: Vec<u16> = statuses.into_iter().collect();
        self.layer_classifier(move |request, outcome| match outcome.status() {
            Some(status) if statuses.contains(&status.as_u16()) => {
                Some(listed_status(request, status))
            }
            _ => Some(Decision::Done),
        })
    }

    /// Retries every 5xx but these (501 Not Implemented, say), each only when the request is
    /// idempotent or carries a key, as the default table does for 500, 502, 503 and 504. Every other
    /// outcome is left to what was set before (by default, the table: 408, 429 and transport errors).
    ///
    /// ```
    /// use tower_http_retry::RetryPolicy;
    ///
    /// // "Retry 5xx; `clear()` answers 501 until it is implemented: never retry that."
    /// let policy = RetryPolicy::default().retry_server_errors_except([501]);
    /// # let _ = policy;
    /// ```
    pub fn retry_server_errors_except(self, statuses: impl IntoIterator<Item = u16>) -> Self {
        let statuses: Vec<u16> = statuses.into_iter().collect();
        self.layer_classifier(move |request, outcome| match outcome.status() {
            Some(status) if status.is_server_error() => {
                Some(match statuses.contains(&status.as_u16()) {
                    true => Decision::Done,
                    false if request.is_idempotent() => Decision::Retry(RetryClass::Transient),
                    false => Decision::Unsafe,
                })
            }
            _ => None,
        })
    }

    /// Never retries these statuses; every other outcome is left to what was set before.
    ///
    /// ```
    /// use tower_http_retry::RetryPolicy;
    ///
    /// // "4xx never, 429 aside": 408 and 409 are retried by the default table, so name them.
    /// let policy = RetryPolicy::default().never_retry_statuses([408, 409]);
    /// # let _ = policy;
    /// ```
    pub fn never_retry_statuses(self, statuses: impl IntoIterator<Item = u16>) -> Self {
        let statuses: Vec<u16> = statuses.into_iter().collect();
        self.layer_classifier(move |_, outcome| {
            outcome
                .status()
                .filter(|status| statuses.contains(&status.as_u16()))
                .map(|_| Decision::Done)
        })
    }

    /// Puts `rule` in front of the classifier set so far, which still decides what `rule` leaves.
    fn layer_classifier<F>(mut self, rule: F) -> Self
    where
        F: Fn(&RequestInfo<'_>, &Outcome<'_>) -> Option<Decision> + Send + Sync + 'static,
    {
        let earlier = self.classify.take();
        self.classify = Some(Arc::new(move |request, outcome| {
            rule(request, outcome)
                .or_else(|| earlier.as_ref().and_then(|hook| hook(request, outcome)))
        }));
        self
    }
}

/// A status the caller named as retryable, with the default table's care for side effects.
fn listed_status(request: &RequestInfo<'_>, status: StatusCode) -> Decision {
    let class = match status.as_u16() {
        409 | 429 => RetryClass::Throttling,
        _ => RetryClass::Transient,
    };
    // 429 says the server did not act on the request; anything else may follow an effect.
    if status.as_u16() == 429 || request.is_idempotent() {
        Decision::Retry(class)
    } else {
        Decision::Unsafe
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use http::{HeaderMap, HeaderName, Method, Uri};

    use super::*;

    fn decide(policy: &RetryPolicy, method: Method, outcome: Outcome<'_>) -> Decision {
        let (uri, headers) = (Uri::from_static("http://api.test/"), HeaderMap::new());
        let key = HeaderName::from_static("idempotency-key");
        policy.decide(
            &RequestInfo::new(&method, &uri, &headers, 1, &key),
            &outcome,
        )
    }

    fn status(code: u16, headers: &HeaderMap) -> Outcome<'_> {
        Outcome::Response {
            status: StatusCode::from_u16(code).unwrap(),
            headers,
            extensions: Box::leak(Box::default()), // a few bytes per test
        }
    }

    const TRANSIENT: Decision = Decision::Retry(RetryClass::Transient);
    const THROTTLING: Decision = Decision::Retry(RetryClass::Throttling);

    #[test]
    fn retry_only_statuses_retries_those_and_nothing_else() {
        let none = HeaderMap::new();
        let policy = RetryPolicy::default().retry_only_statuses([429, 503]);
        assert_eq!(
            decide(&policy, Method::POST, status(429, &none)),
            THROTTLING
        );
        assert_eq!(decide(&policy, Method::GET, status(503, &none)), TRANSIENT);
        assert_eq!(
            decide(&policy, Method::POST, status(503, &none)),
            Decision::Unsafe
        );
        for code in [500, 502, 504, 408] {
            assert_eq!(
                decide(&policy, Method::GET, status(code, &none)),
                Decision::Done
            );
        }
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let outcome = Outcome::Error(&refused);
        assert_eq!(decide(&policy, Method::GET, outcome), Decision::Done);
    }

    #[test]
    fn retry_server_errors_except_keeps_the_listed_ones_and_the_table() {
        let none = HeaderMap::new();
        let policy = RetryPolicy::default().retry_server_errors_except([501]);
        for code in [500, 505, 507, 599] {
            assert_eq!(decide(&policy, Method::GET, status(code, &none)), TRANSIENT);
            let post = decide(&policy, Method::POST, status(code, &none));
            assert_eq!(post, Decision::Unsafe);
        }
        assert_eq!(
            decide(&policy, Method::GET, status(501, &none)),
            Decision::Done
        );
        assert_eq!(decide(&policy, Method::GET, status(429, &none)), THROTTLING);
        assert_eq!(
            decide(&policy, Method::GET, status(404, &none)),
            Decision::Done
        );
    }

    #[test]
    fn shortcuts_layer_over_earlier_ones_and_hooks() {
        let none = HeaderMap::new();
        let policy = RetryPolicy::default()
            .classify_with(|_, outcome| match outcome.status() {
                Some(status) if status.as_u16() == 520 => Some(TRANSIENT),
                _ => None,
            })
            .never_retry_statuses([408, 503]);
        assert_eq!(decide(&policy, Method::GET, status(520, &none)), TRANSIENT);
        assert_eq!(
            decide(&policy, Method::GET, status(503, &none)),
            Decision::Done
        );
        assert_eq!(
            decide(&policy, Method::GET, status(408, &none)),
            Decision::Done
        );
        assert_eq!(decide(&policy, Method::GET, status(502, &none)), TRANSIENT);
    }
}
