//! Hedged requests under tokio's paused clock: the delay, the budget, the cap, which requests may
//! be hedged, the race's rules, and what the history says; and the budget's line across threads,
//! in real time.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use retry_test_support::watchdog;
use tokio::time::{sleep, sleep_until, Instant};
use tower::{service_fn, Service, ServiceExt};
use tower_http_retry::budget::RetryBudget;
use tower_http_retry::hedge::Hedge;
use tower_http_retry::history::AttemptOutcome;
use tower_http_retry::throttle::Throttle;
use tower_http_retry::{CallSettings, Retry, RetryEvent, RetryHistory, RetryPolicy};

type Body = Full<Bytes>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What the server did with each request: when it arrived, and whether its answer was dropped
/// unfinished (the client let go of it).
#[derive(Default)]
struct Log {
    arrived: Mutex<Vec<Duration>>,
    dropped: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// Counts a request as in flight until its answer is sent or dropped.
struct InFlight(Arc<Log>, bool);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !self.1 {
            self.0.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A server whose `n`-th request (from 0) takes `took(n)` and answers `status(n)`.
fn server(
    took: impl Fn(usize) -> Duration + Clone + Send + 'static,
    status: impl Fn(usize) -> u16 + Clone + Send + 'static,
) -> (
    impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone,
    Arc<Log>,
) {
    let log = Arc::new(Log::default());
    let seen = log.clone();
    let start = Instant::now();
    let service = service_fn(move |_: Request<Body>| {
        let n = {
            let mut arrived = seen.arrived.lock().unwrap();
            arrived.push(start.elapsed());
            arrived.len() - 1
        };
        let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        seen.most_in_flight.fetch_max(now, Ordering::SeqCst);
        let guard = InFlight(seen.clone(), false);
        let (took, status) = (took(n), status(n));
        async move {
            // The whole guard moves in, not just the field set below.
            let mut guard = guard;
            sleep(took).await;
            guard.1 = true;
            let response = Response::builder().status(status);
            Ok::<_, Infallible>(response.body(Body::new(Bytes::new())).unwrap())
        }
    });
    (service, log)
}

fn get() -> Request<Body> {
    Request::get("http://api.test/items")
        .body(Body::new(Bytes::new()))
        .unwrap()
}

fn history<B>(response: &Response<B>) -> &RetryHistory {
    response.extensions().get::<RetryHistory>().unwrap()
}

/// Hedges after 10 ms, with a budget that never runs out in these tests (4 hedges per call).
fn hedged() -> RetryPolicy {
    RetryPolicy::default().hedge(Hedge::after(ms(10)).budget(4.0))
}

#[tokio::test(start_paused = true)]
async fn a_slow_attempt_is_hedged_after_the_delay_and_the_first_final_outcome_wins() {
    let (server, log) = server(|n| if n == 0 { ms(1_000) } else { ms(5) }, |_| 200);
    let client = Retry::new(server, hedged());
    let start = Instant::now();
    let response = client.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        start.elapsed(),
        ms(15),
        "the hedge left at 10 ms and answered 5 ms later"
    );
    assert_eq!(*log.arrived.lock().unwrap(), [ms(0), ms(10)]);
    let history = history(&response);
    assert_eq!((history.hedges(), history.won_by()), (1, Some(2)));
    // The loser was dropped at once, unfinished.
    assert_eq!(log.dropped.load(Ordering::SeqCst), 1);
    assert_eq!(log.in_flight.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_answers_within_the_delay_is_never_hedged() {
    let (server, log) = server(|_| ms(9), |_| 200);
    let client = Retry::new(server, hedged());
    let response = client.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(log.arrived.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn at_most_max_in_flight_attempts_run_at_once() {
    let (server, log) = server(|n| ms(1_000 - 10 * n as u64), |_| 200);
    let policy = RetryPolicy::default().hedge(Hedge::after(ms(10)).budget(4.0).max_in_flight(3));
    let response = Retry::new(server, policy).oneshot(get()).await.unwrap();
    assert_eq!(log.most_in_flight.load(Ordering::SeqCst), 3);
    assert_eq!(*log.arrived.lock().unwrap(), [ms(0), ms(10), ms(20)]);
    // The third, sent at 20 ms and taking 980 ms, ties with the first; the first to answer wins.
    assert_eq!(history(&response).hedges(), 2);
}

#[tokio::test(start_paused = true)]
async fn hedges_are_at_most_the_budgets_fraction_of_calls() {
    // Every attempt is slow: every call would hedge if the budget let it.
    let (server, log) = server(|_| ms(100), |_| 200);
    let policy = RetryPolicy::default().hedge(Hedge::after(ms(10)).budget(0.05));
    let client = Retry::new(server, policy);
    for _ in 0..200 {
        client.clone().oneshot(get()).await.unwrap();
    }
    let sent = log.arrived.lock().unwrap().len();
    assert_eq!(sent, 210, "5% of 200 calls: 10 hedges");
}

#[tokio::test(start_paused = true)]
async fn a_call_the_spent_budget_refused_hedges_once_the_calls_after_it_refill_it() {
    // Requests 20 and 21 (two calls at once) are slow; every other request takes 1 ms.
    let (server, log) = server(
        |n| if n == 20 || n == 21 { ms(1_000) } else { ms(1) },
        |_| 200,
    );
    let policy = RetryPolicy::default().hedge(Hedge::after(ms(10)).budget(0.05));
    let client = Retry::new(server, policy);
    // 20 calls at 5%: one hedge saved.
    for _ in 0..20 {
        client.clone().oneshot(get()).await.unwrap();
    }
    let start = Instant::now();
    let slow = [
        tokio::spawn(client.clone().oneshot(get())),
        tokio::spawn(client.clone().oneshot(get())),
    ];
    // At 10 ms one of them takes the saved hedge and the other finds the budget spent; the 20
    // calls that follow, one after another, refill it.
    sleep(ms(11)).await;
    for _ in 0..20 {
        client.clone().oneshot(get()).await.unwrap();
    }
    for call in slow {
        let response = call.await.unwrap().unwrap();
        assert_eq!(history(&response).hedges(), 1);
    }
    assert!(start.elapsed() < ms(100), "{:?}", start.elapsed());
    assert_eq!(log.arrived.lock().unwrap().len(), 20 + 2 + 2 + 20);
}

#[tokio::test(start_paused = true)]
async fn the_spent_budget_serves_the_calls_it_refused_oldest_first_as_soon_as_it_can_pay() {
    // Requests 0 and 1 (calls A and B) are slow; every other request takes 1 ms.
    let (server, log) = server(|n| if n < 2 { ms(1_000) } else { ms(1) }, |_| 200);
    let policy = RetryPolicy::default().hedge(Hedge::after(ms(10)).budget(0.05));
    let client = Retry::new(server, policy);
    let start = Instant::now();
    let timed = |client: Retry<_, _>| async move {
        let response = client.oneshot(get()).await.unwrap();
        (history(&response).won_by(), start.elapsed())
    };
    let a = tokio::spawn(timed(client.clone()));
    sleep(ms(2)).await;
    let b = tokio::spawn(timed(client.clone()));
    // A finds the budget spent at 10 ms, B at 12 ms: both wait, A first. 18 calls at 26 ms bring
    // it to one hedge (A's and B's own shares are the other 10%), 20 more at 40 ms to another.
    let refill = |n: usize| {
        let calls: Vec<_> = (0..n)
            .map(|_| tokio::spawn(client.clone().oneshot(get())))
            .collect();
        async move {
            for call in calls {
                call.await.unwrap().unwrap();
            }
        }
    };
    sleep_until(start + ms(26)).await;
    refill(18).await;
    sleep_until(start + ms(40)).await;
    refill(20).await;
    // A's hedge leaves with the deposit that pays for it, though B asked since; B's with the
    // next. Each hedge answers 1 ms later.
    assert_eq!(a.await.unwrap(), (Some(2), ms(27)));
    assert_eq!(b.await.unwrap(), (Some(2), ms(41)));
    assert_eq!(log.arrived.lock().unwrap().len(), 2 + 18 + 20 + 2);
}

#[tokio::test(start_paused = true)]
async fn the_percentile_counts_the_attempts_hedges_beat_for_the_time_they_ran() {
    // The first 20 requests take 2 ms; then every call's first attempt takes 100 ms and its
    // hedge 2 ms.
    let (server, log) = server(
        |n| match n < 20 || (n - 20) % 2 == 1 {
            true => ms(2),
            false => ms(100),
        },
        |_| 200,
    );
    let policy = RetryPolicy::default().hedge(Hedge::at_percentile(0.5).budget(4.0));
    let client = Retry::new(server, policy);
    for _ in 0..20 {
        client.clone().oneshot(get()).await.unwrap();
    }
    // Hedged at the median, 2 ms; each beaten first attempt counts 4 ms (2 ms, and its hedge's
    // 2 ms), not the hedge's 2 ms: the median moves up to 4 ms.
    let mut left_after = Vec::new();
    for _ in 0..40 {
        let before = log.arrived.lock().unwrap().len();
        let response = client.clone().oneshot(get()).await.unwrap();
        assert_eq!(history(&response).won_by(), Some(2));
        let arrived = log.arrived.lock().unwrap();
        left_after.push(arrived[before + 1] - arrived[before]);
    }
    assert!(left_after[0] < ms(4), "{left_after:?}");
    assert!(left_after[39] >= ms(4), "{left_after:?}");
}

#[tokio::test(start_paused = true)]
async fn a_request_unsafe_to_send_twice_is_never_hedged_and_a_keyed_one_is() {
    let post = |key: Option<&str>| {
        let mut request = Request::post("http://api.test/charges");
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.body(Body::new(Bytes::from_static(b"{}"))).unwrap()
    };
    let (service, log) = server(|n| if n == 0 { ms(100) } else { ms(1) }, |_| 200);
    let client = Retry::new(service, hedged());
    client.clone().oneshot(post(None)).await.unwrap();
    assert_eq!(log.arrived.lock().unwrap().len(), 1, "a POST without a key");

    let (server, log) = server(|n| if n == 0 { ms(100) } else { ms(1) }, |_| 200);
    let client = Retry::new(server, hedged());
    let response = client.oneshot(post(Some("order-7"))).await.unwrap();
    assert_eq!(log.arrived.lock().unwrap().len(), 2, "a POST with a key");
    assert_eq!(history(&response).won_by(), Some(2));
}

/// A server whose first request takes 100 ms and answers 200, whose second (the first hedge)
/// answers 503 after 1 ms, and whose others take 500 ms.
fn first_hedge_fails() -> (
    impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone,
    Arc<Log>,
) {
    let took = |n| match n {
        0 => ms(100),
        1 => ms(1),
        _ => ms(500),
    };
    server(took, |n| if n == 1 { 503 } else { 200 })
}

#[tokio::test(start_paused = true)]
async fn a_retryable_failure_ends_nothing_while_another_attempt_runs() {
    // The first attempt is slow but succeeds; the hedge fails at once with a 503, and another
    // hedge leaves at once (A6), slower than the first.
    let (service, log) = first_hedge_fails();
    let response = Retry::new(service, hedged()).oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let history = history(&response);
    assert_eq!(history.won_by(), Some(1));
    assert_eq!(history.hedges(), 2);
    assert_eq!(*log.arrived.lock().unwrap(), [ms(0), ms(10), ms(11)]);
    assert_eq!(
        log.dropped.load(Ordering::SeqCst),
        1,
        "the second hedge, dropped"
    );
}

/// A hedge that fails while the first attempt still runs is no retry: nothing waited for it. It
/// is recorded with no wait, reported as no retry to the hook, and draws nothing from the retry
/// budget.
#[tokio::test(start_paused = true)]
async fn a_hedge_that_fails_while_another_attempt_runs_is_recorded_as_no_retry() {
    // The first attempt takes 100 ms; the hedge at 10 ms fails at once; the next hedge, at once
    // after it, is slower than the first.
    let (service, _) = first_hedge_fails();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let budget = RetryBudget::builder().ratio(0.0).floor(1).build();
    let policy = hedged()
        .retry_budget(budget.clone())
        .on_retry(move |event| seen.lock().unwrap().push(*event));
    let response = Retry::new(service, policy).oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let history = history(&response);
    assert_eq!((history.won_by(), history.hedges()), (Some(1), 2));
    let attempts = history.attempts();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(
        attempts[0].outcome,
        AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE)
    );
    assert_eq!(
        attempts[0].wait, None,
        "nothing waited after the hedge that failed"
    );
    let events = events.lock().unwrap();
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, RetryEvent::Retry { .. })),
        "{events:?}"
    );
    assert_eq!(
        budget.available(),
        1.0,
        "the floor's one retry is still there"
    );
}

/// With no hedge budget a call is never hedged, and nothing wakes it to ask: its attempt is polled
/// when it makes progress, not every quarter of the delay for the budget to refuse again.
#[tokio::test(start_paused = true)]
async fn a_policy_with_no_hedge_budget_never_wakes_a_call_to_ask() {
    let polls = Arc::new(AtomicUsize::new(0));
    let counted = polls.clone();
    let service = service_fn(move |_: Request<Body>| {
        let counted = counted.clone();
        let mut took = Box::pin(sleep(ms(100)));
        std::future::poll_fn(move |cx| {
            counted.fetch_add(1, Ordering::SeqCst);
            took.as_mut()
                .poll(cx)
                .map(|()| Ok::<_, Infallible>(Response::new(Body::new(Bytes::new()))))
        })
    });
    let policy = RetryPolicy::default().hedge(Hedge::after(ms(10)).budget(0.0));
    let response = Retry::new(service, policy).oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let polls = polls.load(Ordering::SeqCst);
    assert!(polls <= 3, "{polls} polls of a 100 ms attempt");
}

#[tokio::test(start_paused = true)]
async fn the_last_attempt_in_flight_failing_retries_as_usual() {
    let took = |n| if n < 2 { ms(20) } else { ms(1) };
    let (service, log) = server(took, |n| if n < 2 { 503 } else { 200 });
    let policy = RetryPolicy::default()
        // One hedge per call: when the first attempt fails, none is left to send at once.
        .hedge(Hedge::after(ms(10)).budget(1.0))
        .backoff(
            tower_http_retry::backoff::Backoff::constant(ms(50))
                .jitter(tower_http_retry::backoff::Jitter::None),
        );
    let response = Retry::new(service, policy).oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let arrived = log.arrived.lock().unwrap().clone();
    // Both 503s (at 20 and 30 ms); the retry after the last one's backoff.
    assert_eq!(arrived[..2], [ms(0), ms(10)]);
    assert!(arrived[2] >= ms(80), "{arrived:?}");
}

#[tokio::test(start_paused = true)]
async fn the_percentile_is_learned_per_route_and_nothing_is_hedged_before() {
    let slow_next = Arc::new(AtomicUsize::new(usize::MAX));
    let when = slow_next.clone();
    let (server, log) = server(
        move |n| match n == when.load(Ordering::SeqCst) {
            true => ms(1_000),
            false => ms(2),
        },
        |_| 200,
    );
    let client = Retry::new(
        server,
        RetryPolicy::default().hedge(Hedge::default().budget(4.0)),
    );
    // Unmeasured: a slow attempt is not hedged.
    slow_next.store(0, Ordering::SeqCst);
    let start = Instant::now();
    client.clone().oneshot(get()).await.unwrap();
    assert_eq!(start.elapsed(), ms(1_000));
    for _ in 0..30 {
        client.clone().oneshot(get()).await.unwrap();
    }
    // Measured at 2 ms (the slow one among 31): the next slow attempt is hedged at about 2 ms.
    let n = log.arrived.lock().unwrap().len();
    slow_next.store(n, Ordering::SeqCst);
    let start = Instant::now();
    let response = client.clone().oneshot(get()).await.unwrap();
    assert!(start.elapsed() <= ms(5), "{:?}", start.elapsed());
    assert_eq!(history(&response).won_by(), Some(2));
}

#[tokio::test(start_paused = true)]
async fn per_call_settings_turn_hedging_off_or_change_its_delay() {
    let (service, log) = server(|n| if n < 2 { ms(100) } else { ms(1) }, |_| 200);
    let client = Retry::new(service, hedged());
    let mut off = get();
    off.extensions_mut()
        .insert(CallSettings::new().no_hedging());
    let start = Instant::now();
    client.clone().oneshot(off).await.unwrap();
    assert_eq!(start.elapsed(), ms(100));
    let mut sooner = get();
    sooner
        .extensions_mut()
        .insert(CallSettings::new().hedge_after(ms(3)));
    let start = Instant::now();
    client.clone().oneshot(sooner).await.unwrap();
    assert_eq!(start.elapsed(), ms(4));
    assert_eq!(log.arrived.lock().unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_hedge_is_never_sent_to_a_scope_on_hold() {
    let (server, log) = server(|_| ms(100), |_| 200);
    let throttle = Throttle::new();
    let client = Retry::new(server, hedged().throttle(throttle.clone()));
    let call = tokio::spawn(client.oneshot(get()));
    sleep(ms(5)).await;
    // Another call's answer holds the server for 10 s meanwhile.
    throttle.hold(
        &http::Uri::from_static("http://api.test/"),
        Duration::from_secs(10),
    );
    let response = call.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(log.arrived.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_call_whose_hedge_the_throttle_holds_back_gives_its_place_in_the_budgets_line_up() {
    // Requests 0 and 1 (call A to one server, B to another) are slow; the others take 1 ms.
    let (server, _) = server(|n| if n < 2 { ms(1_000) } else { ms(1) }, |_| 200);
    let throttle = Throttle::new();
    let policy = RetryPolicy::default()
        .hedge(Hedge::after(ms(10)).budget(0.05))
        .throttle(throttle.clone());
    let client = Retry::new(server, policy);
    let to = |uri: &str| Request::get(uri).body(Body::new(Bytes::new())).unwrap();
    let start = Instant::now();
    let timed = |client: Retry<_, _>, request| async move {
        let response = client.oneshot(request).await.unwrap();
        (history(&response).won_by(), start.elapsed())
    };
    let _a = tokio::spawn(timed(client.clone(), to("http://a.test/items")));
    sleep(ms(2)).await;
    let b = tokio::spawn(timed(client.clone(), to("http://b.test/items")));
    // Both find the budget spent (A at 10 ms, B at 12 ms); then A's server is held.
    sleep_until(start + ms(15)).await;
    throttle.hold(
        &http::Uri::from_static("http://a.test/"),
        Duration::from_secs(10),
    );
    // 18 calls at 20 ms pay for one hedge: A, first in line, may not send it; B does.
    sleep_until(start + ms(20)).await;
    for _ in 0..18 {
        client
            .clone()
            .oneshot(to("http://b.test/other"))
            .await
            .unwrap();
    }
    assert_eq!(b.await.unwrap(), (Some(2), ms(38)));
}

#[tokio::test(start_paused = true)]
async fn a_head_request_is_hedged_like_a_get() {
    let (server, log) = server(|n| if n == 0 { ms(100) } else { ms(1) }, |_| 200);
    let mut head = get();
    *head.method_mut() = Method::HEAD;
    Retry::new(server, hedged()).oneshot(head).await.unwrap();
    assert_eq!(log.arrived.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_on_retry_hook_is_told_of_each_hedge() {
    let (service, _) = server(|n| if n == 0 { ms(100) } else { ms(1) }, |_| 200);
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = events.clone();
    let policy = hedged().on_retry(move |event| log.lock().unwrap().push(*event));
    Retry::new(service, policy).oneshot(get()).await.unwrap();
    let events = events.lock().unwrap();
    assert!(
        matches!(
            events[..],
            [
                RetryEvent::Hedge { attempt: 2, after, .. },
                RetryEvent::Stop { attempts: 2, .. }
            ] if after == ms(10)
        ),
        "{events:?}"
    );
}

/// A hedge the throttle does not let go is tried again a delay later, and at least a millisecond:
/// with a zero delay (`Hedge::after(Duration::ZERO)`, `CallSettings::hedge_after(ZERO)`, or a
/// learned percentile of zero) the race re-armed its timer at `now` and polled itself round and
/// round; under a paused clock time never moved and the call never ended. The same re-arm follows
/// a body that cannot be copied yet. The call runs on a thread of its own, so that this test fails
/// instead of hanging.
#[test]
fn a_zero_delay_hedge_the_throttle_does_not_let_go_does_not_spin() {
    let (took, arrived) = watchdog::within(Duration::from_secs(5), true, || async {
        let (server, log) = server(|_| ms(100), |_| 200);
        // Paced from the first request: the first attempt takes the turn, the hedge at once
        // after it finds its turn not yet come.
        let policy = RetryPolicy::default()
            .hedge(Hedge::after(Duration::ZERO).budget(1.0))
            .throttle(Throttle::new().from_first_request());
        let start = Instant::now();
        let response = Retry::new(server, policy).oneshot(get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let arrived = log.arrived.lock().unwrap().len();
        (start.elapsed(), arrived)
    });
    // The turn at 2 r/s comes after the first attempt's 100 ms: it won alone.
    assert_eq!((took, arrived), (ms(100), 1));
}

/// The budget's line across threads: calls wait in it on one worker while the calls that pay for
/// their hedges deposit on another. Every hedge paid for is sent, by a wake-up none of them may
/// miss (a call that joins the line as a deposit is made looks again), and no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calls_in_the_budgets_line_on_several_threads_get_every_hedge_paid_for_and_no_more() {
    const WAITING: usize = 40;
    const PAYING: usize = 200;
    // A call's first attempt waits for the test's release; its hedge, and every quick call,
    // answer at once. `x-call` names the call.
    let release = Arc::new(tokio::sync::Notify::new());
    let seen = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let hedges = Arc::new(AtomicUsize::new(0));
    let service = {
        let (release, hedges) = (release.clone(), hedges.clone());
        service_fn(move |request: Request<Body>| {
            let call = request.headers()["x-call"].to_str().unwrap().to_owned();
            let first = seen.lock().unwrap().insert(call.clone());
            let slow = first && call.starts_with("wait");
            if !first {
                hedges.fetch_add(1, Ordering::SeqCst);
            }
            let release = release.clone();
            async move {
                if slow {
                    release.notified().await;
                }
                Ok::<_, Infallible>(Response::new(Body::new(Bytes::new())))
            }
        })
    };
    let policy = RetryPolicy::default().hedge(Hedge::after(ms(1)).budget(0.05));
    let client = Retry::new(service, policy);
    let call = |name: String| {
        let request = Request::get("http://api.test/items")
            .header("x-call", name)
            .body(Body::new(Bytes::new()))
            .unwrap();
        client.clone().oneshot(request)
    };
    let waiting: Vec<_> = (0..WAITING)
        .map(|i| tokio::spawn(call(format!("wait-{i}"))))
        .collect();
    // Their own shares pay for 2 hedges; the 200 calls after them, on both workers, for 10 more.
    sleep(ms(20)).await;
    let paying: Vec<_> = (0..4)
        .map(|worker| {
            let calls: Vec<_> = (0..PAYING / 4)
                .map(|i| call(format!("pay-{worker}-{i}")))
                .collect();
            tokio::spawn(async move {
                for call in calls {
                    call.await.unwrap();
                }
            })
        })
        .collect();
    for paying in paying {
        paying.await.unwrap();
    }
    let paid = (WAITING + PAYING) / 20;
    let all_sent = async {
        while hedges.load(Ordering::SeqCst) < paid {
            sleep(ms(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), all_sent)
        .await
        .unwrap_or_else(|_| panic!("{} of {paid} hedges sent", hedges.load(Ordering::SeqCst)));
    sleep(ms(20)).await;
    assert_eq!(
        hedges.load(Ordering::SeqCst),
        paid,
        "no hedge beyond the budget"
    );
    // The calls hedged end with their hedges; the others when their attempts are let go.
    release.notify_waiters();
    let mut won_by_hedge = 0;
    for call in waiting {
        let response = call.await.unwrap().unwrap();
        // A call never hedged carries no history.
        let won_by = response
            .extensions()
            .get::<RetryHistory>()
            .and_then(RetryHistory::won_by);
        won_by_hedge += usize::from(won_by == Some(2));
    }
    assert_eq!(won_by_hedge, paid);
}
