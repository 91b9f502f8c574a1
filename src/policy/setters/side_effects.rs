//! Which requests are safe to send again: the idempotency key header, the keys the layer sets, and
//! the header that marks a replayed response.

use http::{HeaderName, Method};

use crate::policy::idempotency::DEFAULT_IDEMPOTENCY_KEY_METHODS;
use crate::policy::retry_policy::RetryPolicy;

/// Which requests may be sent again: the idempotency key header, the keys the layer sets, and the
/// mark of a replayed response.
impl RetryPolicy {
    /// Recognises `header` as the idempotency key: a request carrying it counts as idempotent. It is
    /// also the header [`inject_idempotency_keys`](Self::inject_idempotency_keys) sets.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::{Arc, Mutex};
    /// use http::{HeaderName, Request, Response, StatusCode};
    /// use tower::{service_fn, ServiceExt};
    /// use tower_http_retry::{Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // Unavailable, then the charge is made.
    /// let statuses = Arc::new(Mutex::new([503u16, 201].into_iter()));
    /// let server = service_fn(move |_: Request<String>| {
    ///     let status = statuses.lock().unwrap().next().unwrap();
    ///     let response = Response::builder().status(status).body(String::new());
    ///     async move { Ok::<_, Infallible>(response.unwrap()) }
    /// });
    /// assert_eq!(http::HeaderName::from_static("idempotency-key"), "idempotency-key");
    /// let header = HeaderName::from_static("x-idempotency-key");
    /// let policy = RetryPolicy::default().idempotency_header(header);
    ///
    /// // A POST with a key in that header is retried after a 503.
    /// let charge = Request::post("http://pay.example/v1/charges")
    ///     .header("x-idempotency-key", "order-42")
    ///     .body(String::from("{}"))
    ///     .unwrap();
    /// let response = Retry::new(server, policy).oneshot(charge).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::CREATED);
    /// # }
    /// ```
    pub fn idempotency_header(mut self, header: HeaderName) -> Self {
        self.idempotency.header = header;
        self
    }

    /// Gives every POST and PATCH that carries no idempotency key a fresh one before its first attempt,
    /// in the [`idempotency_header`](Self::idempotency_header), and sends it verbatim on every retry.
    ///
    /// Only for servers that honour the header: the request then counts as idempotent and is retried
    /// after failures that may have taken effect.
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
    ///
    /// # Retrying a mutation without repeating its side effect
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{Request, Response, StatusCode};
    /// use http_body_util::Full;
    /// use tower::{service_fn, ServiceBuilder, ServiceExt};
    /// use tower_http_retry::{RetryHistory, RetryLayer, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // A payments API that honours `Idempotency-Key` and answers this one charge with a 503 first.
    /// let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let api = service_fn(move |request: Request<Full<Bytes>>| {
    ///     let mut keys = log.lock().unwrap();
    ///     keys.push(request.headers()["idempotency-key"].clone());
    ///     let status = if keys.len() == 1 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::CREATED };
    ///     let mut response = Response::new(Full::new(Bytes::new()));
    ///     *response.status_mut() = status;
    ///     async move { Ok::<_, std::convert::Infallible>(response) }
    /// });
    ///
    /// let client = ServiceBuilder::new()
    ///     .layer(RetryLayer::new(RetryPolicy::default().inject_idempotency_keys()))
    ///     .service(api);
    ///
    /// let charge = Request::post("https://pay.example/v1/charges").body(Full::new(Bytes::from("{}"))).unwrap();
    /// let response = client.oneshot(charge).await.unwrap();
    /// assert_eq!(response.status(), StatusCode::CREATED);
    ///
    /// // One key, set before the first attempt and sent verbatim on the retry.
    /// let seen = seen.lock().unwrap();
    /// let history = response.extensions().get::<RetryHistory>().unwrap();
    /// assert_eq!(seen.len(), 2);
    /// assert_eq!(seen[0], seen[1]);
    /// assert_eq!(history.idempotency_key(), Some(&seen[0]));
    /// # }
    /// ```
    ///
    /// # The contract
    ///
    /// A server that honours idempotency keys runs the side effect of a key once, answers a repeat of a
    /// finished one with the stored result (marking it as a replay), answers `409 Conflict` while the first
    /// is still running, and `422 Unprocessable Content` when the key comes back with a different payload.
    /// Retrying is then safe after any failure, as long as every attempt carries the same key:
    ///
    /// - A request carrying the key header ([`RetryPolicy::idempotency_header`], `Idempotency-Key` by default)
    ///   counts as idempotent: it is retried after 5xx, resets and timeouts like a GET.
    /// - `409` with a key is retried with the same key, waiting at least its `Retry-After`; `422` is not.
    /// - [`RetryPolicy::inject_idempotency_keys`] gives each POST and PATCH that has no key a fresh one (a
    ///   version 4 UUID from the operating system's cryptographic generator) before its first attempt. Every
    ///   retry sends the same key, a key the caller set is never replaced (a blank or whitespace-only value
    ///   is no key: it is replaced when injection is on, and otherwise leaves the request unkeyed), and no
    ///   key is ever minted to
    ///   force a retry. [`RetryPolicy::seed`] does not touch keys: a seeded key would repeat across runs.
    /// - A response marked as a replay (`X-Idempotency-Replayed: true` by default,
    ///   [`RetryPolicy::idempotency_replayed_header`]) is reported by [`RetryHistory::is_replayed`]; the key
    ///   the request carried is in [`RetryHistory::idempotency_key`], on responses and on errors, so a caller
    ///   can try the same operation again later with the same key. A response the first attempt settled
    ///   carries a history when the layer set the key, or when a request of a method that is not
    ///   idempotent carried its own; an idempotent request's own key is not looked up then.
    /// - A [`before_retry`](RetryPolicy::before_retry) hook cannot change the key.
    ///
    /// Turn injection on only for servers that honour the header: a keyed request counts as idempotent, so a
    /// server that ignores the key may run a retried POST twice.
    ///
    /// [`RetryHistory::is_replayed`]: crate::RetryHistory::is_replayed
    /// [`RetryHistory::idempotency_key`]: crate::RetryHistory::idempotency_key
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
