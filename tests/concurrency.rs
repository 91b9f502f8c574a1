//! 10,000 concurrent requests with streamed bodies through one layer, against a real server on
//! 127.0.0.1 that resets every fifth request: every request ends, every task finishes, and the replay
//! recordings never hold more than in-flight requests × the replay limit.

use retry_test_support::{server, upload};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use server::{Reply, Server};
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::backoff::{Backoff, Jitter};
use tower_http_retry::body::ReplayBody;
use tower_http_retry::body::ReplayableBody;
use tower_http_retry::{RetryLayer, RetryPolicy};
use upload::Upload;

const REQUESTS: usize = 10_000;
/// Connections the client may open at once: below the machine's file limit for both ends.
const CONNECTIONS: usize = 256;
const REPLAY_LIMIT: u64 = 4 * 1024;

/// The replay recordings of the requests in flight, by request, for the memory sampler.
type Recordings = Arc<Mutex<HashMap<usize, ReplayBody<Upload>>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_requests_all_end_and_every_task_finishes() {
    let baseline_tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let script = (0..4 * REQUESTS)
        .map(|i| {
            if i % 5 == 0 {
                Reply::Reset
            } else {
                Reply::status(200)
            }
        })
        .collect();
    let server = Server::start([("/upload", script)]).await;
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(
            RetryPolicy::default()
                .no_retry_budget()
                .max_attempts(8)
                .backoff(Backoff::constant(Duration::from_millis(1)).jitter(Jitter::Full)),
        ))
        .concurrency_limit(CONNECTIONS)
        .service(Client::builder(TokioExecutor::new()).build_http());

    // Samples the bytes held by every live recording, against in-flight requests × the limit.
    let recordings: Recordings = Arc::default();
    let sampling = Arc::new(AtomicBool::new(true));
    let most_recorded = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn({
        let (recordings, sampling, most_recorded) =
            (recordings.clone(), sampling.clone(), most_recorded.clone());
        async move {
            while sampling.load(Ordering::SeqCst) {
                {
                    let live = recordings.lock().unwrap();
                    let held: u64 = live.values().map(ReplayBody::recorded_bytes).sum();
                    assert!(
                        held <= live.len() as u64 * REPLAY_LIMIT,
                        "{held} bytes for {} requests",
                        live.len()
                    );
                    most_recorded.fetch_max(held, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });

    let started = Instant::now();
    let finished = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|id| {
            let client = client.clone();
            let url = server.url("/upload");
            let (recordings, finished) = (recordings.clone(), finished.clone());
            tokio::spawn(async move {
                // Half the bodies fit the replay limit, half outgrow it.
                let len = if id % 2 == 0 { 2 * 1024 } else { 6 * 1024 };
                let body = ReplayBody::with_limit(Upload::pattern(len, 1024), REPLAY_LIMIT);
                recordings
                    .lock()
                    .unwrap()
                    .insert(id, body.replay().expect("a fresh body replays"));
                let request = Request::put(url).body(body).expect("a valid request");
                let result = client.oneshot(request).await;
                recordings.lock().unwrap().remove(&id);
                finished.fetch_add(1, Ordering::SeqCst);
                (id, result.map(|response| response.status()))
            })
        })
        .collect();

    let (mut ok, mut errors) = (0, 0);
    for task in tasks {
        let (id, result) = task.await.expect("no task panicked");
        match result {
            Ok(status) => {
                assert_eq!(status, StatusCode::OK);
                ok += 1;
            }
            Err(error) => {
                // Only a body that outgrew its recording may end on a reset: it cannot be sent again.
                assert_eq!(id % 2, 1, "request {id}: {error}");
                assert!(
                    error.kind().is_some_and(|k| !k.is_never_sent()),
                    "request {id}: {error}"
                );
                errors += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    sampling.store(false, Ordering::SeqCst);
    sampler.await.expect("the sampler's bound held");

    println!(
        "{REQUESTS} requests in {elapsed:.1?}: {ok} answered 200, {errors} ended in an error; \
         {} attempts reached the server; at most {} bytes recorded at once",
        server.received().len(),
        most_recorded.load(Ordering::SeqCst)
    );
    assert_eq!(
        finished.load(Ordering::SeqCst),
        REQUESTS,
        "every task finished"
    );
    assert_eq!(
        ok + errors,
        REQUESTS,
        "every request ended in a response or an error"
    );
    assert!(
        errors > 0 && errors < REQUESTS / 2,
        "only unreplayable bodies hit by a reset failed: {errors}"
    );

    // With the client and the server gone, every task they spawned ends too: nothing is left hanging.
    drop(client);
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(5);
    let alive = loop {
        let alive = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        if alive <= baseline_tasks || Instant::now() > deadline {
            break alive;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        alive <= baseline_tasks,
        "{alive} tasks still alive, {baseline_tasks} before the test"
    );
}
