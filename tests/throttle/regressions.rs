//! Regressions from outside testing of the old shared pushback hold, now the throttle
//! (`throttle::Throttle`), under tokio's paused clock.

use crate::durations::secs;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode, Uri};
use tokio::time::Instant;
use tower::{service_fn, ServiceExt};
use tower_http_retry::retry_after::RetryAfterMode;
use tower_http_retry::throttle::Throttle;
use tower_http_retry::{Retry, RetryPolicy};

/// The request told `Retry-After: 5` waits exactly 5 s with `Exact`, however many requests are held
/// behind it, and so completes within an 8 s deadline.
#[tokio::test(start_paused = true)]
async fn the_request_told_to_wait_waits_what_its_own_policy_says() {
    for seed in 0..20 {
        let calls = Arc::new(AtomicUsize::new(0));
        let server = service_fn(move |_: Request<String>| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let response = match n {
                0 => Response::builder().status(429).header("retry-after", "5"),
                _ => Response::builder(),
            };
            async move { Ok::<_, Infallible>(response.body(String::new()).unwrap()) }
        });
        let policy = RetryPolicy::default()
            .throttle(Throttle::new())
            .retry_after_mode(RetryAfterMode::Exact)
            .deadline(secs(8))
            .seed(seed);
        let client = Retry::new(server, policy);
        let get = || {
            Request::get("http://api.test/")
                .body(String::new())
                .unwrap()
        };
        let start = Instant::now();
        let told = tokio::spawn(client.clone().oneshot(get()));
        tokio::task::yield_now().await;
        // Others arrive during the hold and are held behind it.
        let mut others = Vec::new();
        for _ in 0..5 {
            tokio::time::advance(Duration::from_millis(100)).await;
            others.push(tokio::spawn(client.clone().oneshot(get())));
        }
        let response = told.await.unwrap().expect("completes within the deadline");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(start.elapsed(), secs(5), "seed {seed}");
        for other in others {
            assert_eq!(other.await.unwrap().unwrap().status(), StatusCode::OK);
        }
    }
}

/// A retry that a `before_retry` hook sends to a replica: the replica's `429 Retry-After: 30` holds
/// the replica, not the host the call started with.
#[tokio::test(start_paused = true)]
async fn what_a_replica_says_holds_the_replica_not_the_first_host() {
    let server = service_fn(|request: Request<String>| {
        let response = match request.uri().host() {
            Some("replica.test") => Response::builder().status(429).header("retry-after", "30"),
            _ => Response::builder().status(503),
        };
        async move { Ok::<_, Infallible>(response.body(String::new()).unwrap()) }
    });
    let pushback = Throttle::new();
    let policy = RetryPolicy::default()
        .throttle(pushback.clone())
        .max_attempts(2)
        .before_retry(|head, _| {
            head.uri = Uri::from_static("http://replica.test/items");
            head.headers
                .insert("x-replica", HeaderValue::from_static("1"));
        });
    let client = Retry::new(server, policy);
    let request = Request::get("http://primary.test/items")
        .body(String::new())
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let primary: Uri = "http://primary.test/".parse().unwrap();
    let replica: Uri = "http://replica.test/".parse().unwrap();
    assert_eq!(
        pushback.held_until(&primary),
        None,
        "the primary never asked"
    );
    assert_eq!(
        pushback.held_until(&replica),
        Some(Instant::now() + secs(30)),
        "the replica asked for 30 s"
    );
}
