//! The retry budget through whole calls: a call that is dropped gives back what it withdrew for a retry
//! it never sent.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tower::{service_fn, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::budget::RetryBudget;
use tower_http_retry::{Retry, RetryPolicy};

#[tokio::test(start_paused = true)]
async fn a_call_dropped_during_its_wait_gives_its_retry_back() {
    let budget = RetryBudget::builder().floor(2).ratio(0.0).build();
    let sent = Arc::new(AtomicUsize::new(0));
    let count = sent.clone();
    let server = service_fn(move |_: Request<String>| {
        count.fetch_add(1, Ordering::SeqCst);
        let mut response = Response::new(String::new());
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        async { Ok::<_, Infallible>(response) }
    });
    let client = Retry::new(
        server,
        RetryPolicy::default()
            .retry_budget(budget.clone())
            .backoff(Backoff::constant(Duration::from_secs(10)).jitter(Jitter::None)),
    );
    // Callers that give up after 1 s, well inside the 10 s backoff.
    for _ in 0..5 {
        let call = client.clone().oneshot(Request::new(String::new()));
        assert!(tokio::time::timeout(Duration::from_secs(1), call)
            .await
            .is_err());
    }
    assert_eq!(sent.load(Ordering::SeqCst), 5, "no retry was ever sent");
    assert_eq!(budget.available(), 2.0, "every withdrawal came back");
}

#[tokio::test(start_paused = true)]
async fn a_call_that_ends_on_its_deadline_during_the_wait_gives_its_retry_back() {
    let budget = RetryBudget::builder().floor(1).ratio(0.0).build();
    let server = service_fn(|_: Request<String>| async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut response = Response::new(String::new());
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        Ok::<_, Infallible>(response)
    });
    let client = Retry::new(
        server,
        RetryPolicy::default()
            .retry_budget(budget.clone())
            .deadline(Duration::from_secs(3))
            .backoff(Backoff::constant(Duration::from_millis(500)).jitter(Jitter::None)),
    );
    // The first retry is sent (it spends the floor); the wait before a second is never reached.
    let _ = client.oneshot(Request::new(String::new())).await;
    assert_eq!(budget.available(), 0.0, "the retry that was sent is spent");
}
