//! The "not retrying" warning in an outage: a bounded number of lines, each carrying how many give-ups
//! it stands for, however many requests fail.

use crate::captured::capture;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_http_retry::{RetryLayer, RetryPolicy};

/// The `suppressed` field of each "not retrying" line for `host`.
fn suppressed_counts(log: &str, host: &str) -> Vec<u64> {
    log.lines()
        .filter(|line| {
            line.contains("not retrying") && line.contains(&format!("server.address=\"{host}\""))
        })
        .map(|line| {
            let field = line.split("suppressed=").nth(1).expect("a count");
            field.split_whitespace().next().unwrap().parse().unwrap()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_outage_of_ten_thousand_requests_prints_a_few_lines_with_counts() {
    let (captured, _guard) = capture(tracing::Level::WARN);

    let down = service_fn(|_: Request<Full<Bytes>>| async {
        let response = Response::builder()
            .status(503)
            .body(Full::new(Bytes::new()));
        Ok::<_, Infallible>(response.unwrap())
    });
    // One attempt each: every request gives up at once.
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::default().max_attempts(1)))
        .service(down);
    for i in 0..10_000 {
        // Two hosts, each failing 5,000 times over 50 s.
        let host = if i % 2 == 0 { "a.test" } else { "b.test" };
        let request = Request::get(format!("http://{host}/items"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 503);
        if i % 2 == 1 {
            tokio::time::advance(Duration::from_millis(10)).await;
        }
    }

    let log = captured.text();
    assert_eq!(log.matches("not retrying").count(), 10, "{log}");
    // One line per host per 10 s; each after the first counts the 999 left out since the last.
    for host in ["a.test", "b.test"] {
        assert_eq!(
            suppressed_counts(&log, host),
            [0, 999, 999, 999, 999],
            "{log}"
        );
    }
}
