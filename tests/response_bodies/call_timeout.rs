//! The call's timeout over the response body (`CallTimeoutLayer`): it ends a body however the body
//! behaves, an always-ready one included, leaves the end of a body read in time alone, and accepts
//! any timeout, however long.

use crate::bodies;

use std::convert::Infallible;
use std::time::Duration;

use bodies::{Hostile, Kind};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_http_retry::body::CallTimedOut;
use tower_http_retry::{CallTimeoutLayer, RetryLayer, RetryPolicy};

/// A server answering every call at once with an endless body whose every frame is ready.
fn always_ready_server() -> impl tower::Service<
    Request<String>,
    Response = Response<Hostile>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    service_fn(|_: Request<String>| async { Ok(Response::new(Hostile::new(Kind::Endless))) })
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_body_that_is_always_ready_still_ends_at_the_call_timeout() {
    let client = ServiceBuilder::new()
        .layer(CallTimeoutLayer::new(Duration::from_secs(1)))
        .layer(RetryLayer::new(RetryPolicy::default()))
        .service(always_ready_server());
    let response = client.oneshot(Request::new(String::new())).await.unwrap();
    let mut body = response.into_body();

    // The body never returns `Pending`; a slow reader takes one frame every 100 ms.
    let mut frames = 0;
    let error = loop {
        match body
            .frame()
            .await
            .expect("an endless body does not end on its own")
        {
            Ok(_) => frames += 1,
            Err(error) => break error,
        }
        assert!(
            frames <= 30,
            "{frames} frames read over {} ms",
            frames * 100
        );
        tokio::time::advance(Duration::from_millis(100)).await;
    };
    assert!(error.is::<CallTimedOut>(), "{error}");
    assert_eq!(
        frames, 10,
        "the frames read before the timeout: at 0 ms, 100 ms, ..., 900 ms"
    );
    assert!(
        body.frame().await.is_none(),
        "a body that timed out has ended"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_call_timeout_of_duration_max_is_a_far_deadline_not_a_panic() {
    let client = ServiceBuilder::new()
        .layer(CallTimeoutLayer::new(Duration::MAX))
        .layer(RetryLayer::new(RetryPolicy::default()))
        .service(always_ready_server());
    let response = client.oneshot(Request::new(String::new())).await.unwrap();
    let mut body = response.into_body();
    for _ in 0..3 {
        assert!(body.frame().await.unwrap().is_ok());
        tokio::time::advance(Duration::from_secs(86_400 * 365)).await;
    }
    assert!(
        body.frame().await.unwrap().is_ok(),
        "a year later, still inside the call's time"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_body_read_to_its_end_before_the_call_timeout_still_ends_after_it() {
    let server = service_fn(|_: Request<String>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("whole"))))
    });
    let client = ServiceBuilder::new()
        .layer(CallTimeoutLayer::new(Duration::from_secs(1)))
        .layer(RetryLayer::new(RetryPolicy::default()))
        .service(server);
    let response = client.oneshot(Request::new(String::new())).await.unwrap();
    let mut body = response.into_body();

    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "whole");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(body.frame().await.is_none(), "its end, not a timeout");
}
