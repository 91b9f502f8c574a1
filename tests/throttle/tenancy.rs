//! Many tenants on one host, under tokio's paused clock: what one answer teaches the throttle
//! never slows or fails the requests it did not concern (another key, another route, another
//! channel), and a scope engaged by one 429 starts near the rate it was sent at.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::Full;
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceExt};
use tower_http_retry::throttle::Throttle;
use tower_http_retry::{CallSettings, Retry, RetryPolicy};

use crate::durations::secs;

type Body = Full<Bytes>;

fn respond(status: u16, retry_after: Option<&'static str>) -> Response<Body> {
    let mut response = Response::builder().status(status);
    if let Some(after) = retry_after {
        response = response.header("retry-after", after);
    }
    response.body(Body::new(Bytes::new())).unwrap()
}

fn get(uri: &str, key: Option<&'static str>) -> Request<Body> {
    let mut request = Request::get(uri);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    request.body(Body::new(Bytes::new())).unwrap()
}

#[tokio::test(start_paused = true)]
async fn one_keys_retry_after_never_holds_another_keys_requests() {
    // The server limits per key: alice is over her quota for 30 s, bob is not.
    let server = service_fn(|request: Request<Body>| async move {
        let alice = request
            .headers()
            .get("x-api-key")
            .is_some_and(|k| k == "alice");
        Ok::<_, Infallible>(match alice {
            true => respond(429, Some("30")),
            false => respond(200, None),
        })
    });
    let throttle = Throttle::new();
    let policy = RetryPolicy::default()
        .throttle(throttle.clone())
        .max_attempts(1);
    let client = Retry::new(server, policy);
    let alice = client
        .clone()
        .oneshot(get("http://api.test/a", Some("alice")))
        .await
        .unwrap();
    assert_eq!(alice.status(), 429);
    let start = Instant::now();
    for path in ["/a", "/b"] {
        let uri = format!("http://api.test{path}");
        let bob = client
            .clone()
            .oneshot(get(&uri, Some("bob")))
            .await
            .unwrap();
        assert_eq!(bob.status(), 200);
    }
    assert_eq!(start.elapsed(), Duration::ZERO, "bob never waited");
    let held = throttle.held_until(&get("http://api.test/", Some("alice")));
    assert_eq!(held, Some(start + secs(30)), "alice's scope is held");
    assert_eq!(
        throttle.held_until(&get("http://api.test/", Some("bob"))),
        None
    );
    assert_eq!(
        throttle.held_until(&"http://api.test/".parse::<Uri>().unwrap()),
        None
    );
    assert_eq!(throttle.scopes(), 1);
    // Alice's next call waits her hold out.
    let again = client
        .clone()
        .oneshot(get("http://api.test/c", Some("alice")))
        .await
        .unwrap();
    assert_eq!(again.status(), 429);
    assert!(start.elapsed() >= secs(30));
}

#[tokio::test(start_paused = true)]
async fn a_503_with_retry_after_holds_its_call_and_neither_the_route_nor_the_server() {
    let busy = Arc::new(AtomicU64::new(1));
    let once = busy.clone();
    let server = service_fn(move |request: Request<Body>| {
        let overloaded = request.uri().path() == "/busy"
            && once
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        async move {
            Ok::<_, Infallible>(match overloaded {
                true => respond(503, Some("30")),
                false => respond(200, None),
            })
        }
    });
    let throttle = Throttle::new();
    let client = Retry::new(server, RetryPolicy::default().throttle(throttle.clone()));
    let start = Instant::now();
    let slow = tokio::spawn(client.clone().oneshot(get("http://api.test/busy", None)));
    tokio::task::yield_now().await;
    let other = client
        .clone()
        .oneshot(get("http://api.test/other", None))
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "another route did not wait"
    );
    // Nor does one call's answer hold its route: another call to it leaves at once.
    let again = client
        .clone()
        .oneshot(get("http://api.test/busy", None))
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(start.elapsed(), Duration::ZERO, "the route did not wait");
    let api: Uri = "http://api.test/".parse().unwrap();
    assert_eq!(throttle.held_until(&api), None);
    assert_eq!(throttle.rate(&api), None, "no pacing engaged");
    let slow = slow.await.unwrap().unwrap();
    assert_eq!(slow.status(), 200);
    assert!(
        start.elapsed() >= secs(30),
        "the call waited what it was told"
    );
}

/// What a server saw: each request's method, path and key, and when.
type Seen = Arc<std::sync::Mutex<Vec<(String, String, Duration)>>>;

/// A server whose route `GET /busy` without a key answers its first `n` requests 503 with
/// `Retry-After: 30`, and what it saw.
fn busy_for(
    n: u64,
) -> (
    impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone,
    Seen,
) {
    let left = Arc::new(AtomicU64::new(n));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let start = Instant::now();
    let server = service_fn(move |request: Request<Body>| {
        let key = request
            .headers()
            .get("x-api-key")
            .map_or("", |k| k.to_str().unwrap())
            .to_owned();
        let busy = request.uri().path() == "/busy"
            && key.is_empty()
            && request.method() == http::Method::GET
            && left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        log.lock().unwrap().push((
            request.method().to_string(),
            format!("{}{key}", request.uri().path()),
            start.elapsed(),
        ));
        async move {
            Ok::<_, Infallible>(match busy {
                true => respond(503, Some("30")),
                false => respond(200, None),
            })
        }
    });
    (server, seen)
}

#[tokio::test(start_paused = true)]
async fn two_calls_told_to_wait_hold_their_route_and_nothing_else() {
    let (server, seen) = busy_for(2);
    let client = Retry::new(server, RetryPolicy::default());
    let start = Instant::now();
    // Two calls of the route are told to wait 30 s: each waits its own time...
    let told: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client.clone().oneshot(get("http://api.test/busy", None))))
        .collect();
    tokio::task::yield_now().await;
    tokio::time::advance(secs(1)).await;
    // ...and a third call of the route, told nothing, waits for the route with them.
    let third = client
        .clone()
        .oneshot(get("http://api.test/busy", None))
        .await
        .unwrap();
    assert_eq!(third.status(), 200);
    assert!(start.elapsed() >= secs(30), "{:?}", start.elapsed());
    for call in told {
        assert_eq!(call.await.unwrap().unwrap().status(), 200);
    }
    let seen = seen.lock().unwrap().clone();
    let early: Vec<_> = seen.iter().filter(|(_, _, at)| *at < secs(30)).collect();
    assert_eq!(
        early.len(),
        2,
        "only the two told calls were sent early: {seen:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_held_route_never_holds_another_route_method_or_key() {
    let (server, _) = busy_for(2);
    let client = Retry::new(server, RetryPolicy::default());
    let told: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client.clone().oneshot(get("http://api.test/busy", None))))
        .collect();
    tokio::task::yield_now().await;
    tokio::time::advance(secs(1)).await;
    let start = Instant::now();
    let other_route = get("http://api.test/other", None);
    let mut other_method = get("http://api.test/busy", None);
    *other_method.method_mut() = http::Method::HEAD;
    let other_key = get("http://api.test/busy", Some("bob"));
    for request in [other_route, other_method, other_key] {
        let what = format!("{} {:?}", request.method(), request.uri());
        let response = client.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200, "{what}");
        assert_eq!(start.elapsed(), Duration::ZERO, "{what} waited");
    }
    for call in told {
        assert_eq!(call.await.unwrap().unwrap().status(), 200);
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_whose_deadline_comes_before_its_held_route_ends_fails_at_once_unsent() {
    let (server, seen) = busy_for(2);
    let client = Retry::new(server, RetryPolicy::default());
    let told: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client.clone().oneshot(get("http://api.test/busy", None))))
        .collect();
    tokio::task::yield_now().await;
    let start = Instant::now();
    let mut hurried = get("http://api.test/busy", None);
    hurried
        .extensions_mut()
        .insert(CallSettings::new().deadline(secs(5)));
    let error = client.clone().oneshot(hurried).await.unwrap_err();
    assert!(error.is_deadline(), "{error:?}");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(seen.lock().unwrap().len(), 2, "never sent");
    for call in told {
        assert_eq!(call.await.unwrap().unwrap().status(), 200);
    }
}

#[tokio::test(start_paused = true)]
async fn a_path_only_request_is_throttled_by_its_host_header() {
    let server =
        service_fn(|_: Request<Body>| async { Ok::<_, Infallible>(respond(429, Some("5"))) });
    let throttle = Throttle::new();
    let client = Retry::new(
        server,
        RetryPolicy::default()
            .throttle(throttle.clone())
            .max_attempts(1),
    );
    let request = || {
        Request::get("/v1/items")
            .header("host", "api.test:8080")
            .body(Body::new(Bytes::new()))
            .unwrap()
    };
    client.clone().oneshot(request()).await.unwrap();
    let start = Instant::now();
    let named: Uri = "http://api.test:8080/".parse().unwrap();
    assert_eq!(throttle.held_until(&named), Some(start + secs(5)));
    client.clone().oneshot(request()).await.unwrap();
    assert_eq!(start.elapsed(), secs(5), "the next request waited the hold");
}

#[tokio::test(start_paused = true)]
async fn requests_that_name_no_server_are_throttled_per_wrapped_service() {
    // As tonic's generated clients send to a channel: a path, no host, no Host header.
    let server =
        || service_fn(|_: Request<Body>| async { Ok::<_, Infallible>(respond(429, Some("5"))) });
    let throttle = Throttle::new();
    let policy = RetryPolicy::default()
        .throttle(throttle.clone())
        .max_attempts(1);
    let channel_a = Retry::new(server(), policy.clone());
    let channel_b = Retry::new(server(), policy);
    let path = || get("/pkg.Svc/Call", None);
    channel_a.clone().oneshot(path()).await.unwrap();
    assert_eq!(throttle.scopes(), 1);
    let start = Instant::now();
    channel_b.clone().oneshot(path()).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "another channel is another server"
    );
    channel_a.clone().oneshot(path()).await.unwrap();
    assert_eq!(
        start.elapsed(),
        secs(5),
        "a clone of the channel waits its hold"
    );
}

/// A server that answers after 1 ms.
fn after_a_millisecond(
    status: impl Fn(&Request<Body>) -> u16 + Clone + Send + 'static,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone
{
    service_fn(move |request: Request<Body>| {
        let status = status(&request);
        async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok::<_, Infallible>(respond(status, None))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn one_429_on_a_sequential_client_keeps_it_near_its_own_pace() {
    let refuse = Arc::new(AtomicU64::new(0));
    let flag = refuse.clone();
    let server = after_a_millisecond(move |_| match flag.swap(0, Ordering::SeqCst) {
        0 => 200,
        _ => 429,
    });
    let throttle = Throttle::new();
    let policy = RetryPolicy::default()
        .throttle(throttle.clone())
        .max_attempts(1);
    let client = Retry::new(server, policy);
    let api = "http://api.test/items";
    // A client at its own pace: one request at a time, 1 ms each, for 300 ms.
    for _ in 0..300 {
        client.clone().oneshot(get(api, None)).await.unwrap();
    }
    refuse.store(1, Ordering::SeqCst);
    let answer = client.clone().oneshot(get(api, None)).await.unwrap();
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
    let rate = throttle.rate(&get(api, None)).expect("engaged");
    assert!(
        (1000.0..=1150.0).contains(&rate),
        "starts just above the rate it was sent at (1,000 r/s), not at 2: {rate}"
    );
    let start = Instant::now();
    for _ in 0..20 {
        client.clone().oneshot(get(api, None)).await.unwrap();
    }
    let took = start.elapsed();
    assert!(
        took <= Duration::from_millis(30),
        "20 requests of 1 ms took {took:?}, at most 1.5 x their time"
    );
}

/// Which requests a quota of their own refuses (bare 429s).
#[derive(Clone, Copy)]
enum Refused {
    /// Every request to one route: every 100th call goes there.
    OneRoute,
    /// Every 100th attempt the server sees, whatever its route.
    AtRandom,
}

/// The never-limited requests' figures at 200 r/s for 20 s, 1% refused as `refused` says: their
/// share served, and their 90th percentile latency.
async fn one_in_a_hundred(refused: Refused, throttle: Option<Throttle>) -> (f64, Duration) {
    const OFFERED: u64 = 200; // per second
    const SECONDS: u64 = 20;
    let every = 100;
    let seen = Arc::new(AtomicU64::new(0));
    let server = after_a_millisecond(move |request| {
        let n = seen.fetch_add(1, Ordering::Relaxed);
        let refuse = match refused {
            Refused::OneRoute => request.uri().path() == "/limited",
            Refused::AtRandom => n % 100 == 99,
        };
        if refuse {
            429
        } else {
            200
        }
    });
    let policy = match throttle {
        Some(throttle) => RetryPolicy::default().throttle(throttle),
        None => RetryPolicy::default().no_throttle(),
    };
    let client = Retry::new(server, policy.max_attempts(2));
    let start = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    let gap = Duration::from_micros(1_000_000 / OFFERED);
    for i in 0..OFFERED * SECONDS {
        tokio::time::sleep_until(start + gap * u32::try_from(i).unwrap()).await;
        let limited = matches!(refused, Refused::OneRoute) && i % every == every - 1;
        let uri = if limited {
            "http://api.test/limited"
        } else {
            "http://api.test/open"
        };
        let call = client.clone().oneshot(get(uri, Some("tenant")));
        calls.spawn(async move {
            let sent = Instant::now();
            let answer = call.await;
            (
                limited,
                answer.map(|r| r.status()),
                sent.elapsed(),
                Instant::now(),
            )
        });
    }
    let mut latencies = Vec::new();
    let mut served = 0;
    let end = start + secs(SECONDS);
    while let Some(done) = calls.join_next().await {
        let (limited, status, took, at) = done.unwrap();
        if limited {
            continue;
        }
        latencies.push(took);
        if status.is_ok_and(|s| s == 200) && at <= end + secs(1) {
            served += 1;
        }
    }
    latencies.sort();
    let p90 = latencies[latencies.len() * 9 / 10];
    (f64::from(served) / latencies.len() as f64, p90)
}

/// The default throttle leaves never-limited requests their offered rate and their p90.
async fn never_limited_requests_keep_their_rate(refused: Refused) {
    let (_, unthrottled_p90) = one_in_a_hundred(refused, None).await;
    let (served, p90) = one_in_a_hundred(refused, Some(Throttle::new())).await;
    eprintln!("served {served:.3}, p90 {p90:?} against {unthrottled_p90:?}");
    assert!(served >= 0.95, "served {served}");
    assert!(p90 <= unthrottled_p90 + Duration::from_millis(5), "{p90:?}");
}

#[tokio::test(start_paused = true)]
async fn one_endpoints_429s_leave_the_rest_of_its_scope_at_their_offered_rate() {
    never_limited_requests_keep_their_rate(Refused::OneRoute).await;
}

#[tokio::test(start_paused = true)]
async fn one_in_a_hundred_429s_at_random_leave_the_scope_at_its_offered_rate() {
    never_limited_requests_keep_their_rate(Refused::AtRandom).await;
}

#[tokio::test(start_paused = true)]
async fn a_throttling_retry_that_no_throttle_paces_draws_from_the_budget() {
    use tower_http_retry::budget::RetryBudget;
    use tower_http_retry::history::StopReason;
    // `Retry-After: 0` asks for no pause: a throttling answer that engages no pacing.
    let server =
        service_fn(|_: Request<Body>| async { Ok::<_, Infallible>(respond(429, Some("0"))) });
    let spent = RetryBudget::builder().ratio(0.0).floor(0).build();
    let throttle = Throttle::new();
    let policy = RetryPolicy::default()
        .throttle(throttle.clone())
        .retry_budget(spent);
    let answer = Retry::new(server, policy)
        .oneshot(get("http://api.test/", None))
        .await
        .unwrap();
    assert_eq!(throttle.scopes(), 0, "nothing paces the scope");
    let history = answer
        .extensions()
        .get::<tower_http_retry::RetryHistory>()
        .unwrap();
    assert_eq!(history.attempts().len(), 1, "{history}");
    assert_eq!(
        history.stop_reason(),
        StopReason::BudgetExhausted,
        "{history}"
    );
}

#[cfg(feature = "grpc")]
#[tokio::test(start_paused = true)]
async fn grpc_resource_exhausted_teaches_the_throttle_as_a_429_does() {
    use tower_http_retry::grpc::GrpcPolicy;
    let server = service_fn(|_: Request<Body>| async {
        let response = Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", "8")
            .body(Body::new(Bytes::new()))
            .unwrap();
        Ok::<_, Infallible>(response)
    });
    let throttle = Throttle::new();
    let policy = RetryPolicy::default()
        .throttle(throttle.clone())
        .grpc(GrpcPolicy::new())
        .max_attempts(1);
    let uri = "http://svc.test/pkg.Svc/Call";
    Retry::new(server, policy)
        .oneshot(Request::post(uri).body(Body::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    assert!(
        throttle.rate(&uri.parse::<Uri>().unwrap()).is_some(),
        "paced"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_keeps_its_place_ahead_of_the_calls_that_arrived_during_its_wait() {
    use tower_http_retry::backoff::{Backoff, Jitter};
    use tower_http_retry::classify::RetryClass;
    // The first request is told to come back in 1 s; four more arrive during that second.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let server = service_fn(move |request: Request<Body>| {
        let name = request.headers()["x-call"].to_str().unwrap().to_owned();
        let first = {
            let mut log = log.lock().unwrap();
            log.push(name);
            log.len() == 1
        };
        async move {
            Ok::<_, Infallible>(match first {
                true => respond(429, Some("1")),
                false => respond(200, None),
            })
        }
    });
    // The retry's own wait ends just after the hold, as its timer does in real time.
    let backoff = Backoff::constant(Duration::from_micros(1_000_500)).jitter(Jitter::None);
    let policy = RetryPolicy::default().backoff_for(RetryClass::Throttling, backoff);
    let client = Retry::new(server, policy);
    let call = |name: &'static str, after: Duration| {
        let client = client.clone();
        async move {
            tokio::time::sleep(after).await;
            let request = Request::get("http://api.test/")
                .header("x-call", name)
                .body(Body::new(Bytes::new()))
                .unwrap();
            client.oneshot(request).await.unwrap().status()
        }
    };
    let calls = vec![
        tokio::spawn(call("a", Duration::ZERO)),
        tokio::spawn(call("b", Duration::from_millis(200))),
        tokio::spawn(call("c", Duration::from_millis(400))),
        tokio::spawn(call("d", Duration::from_millis(600))),
        tokio::spawn(call("e", Duration::from_millis(999))),
    ];
    for call in calls {
        assert_eq!(call.await.unwrap(), StatusCode::OK);
    }
    let order = seen.lock().unwrap().clone();
    assert_eq!(order, ["a", "a", "b", "c", "d", "e"], "the retry first");
}

#[cfg(feature = "grpc")]
#[tokio::test(start_paused = true)]
async fn a_storm_of_resource_exhausted_stays_within_one_and_a_bit_attempts_per_call() {
    use tower_http_retry::grpc::GrpcPolicy;
    let attempts = Arc::new(AtomicU64::new(0));
    let counted = attempts.clone();
    let server = service_fn(move |_: Request<Body>| {
        counted.fetch_add(1, Ordering::Relaxed);
        async {
            let response = Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", "8")
                .body(Body::new(Bytes::new()))
                .unwrap();
            Ok::<_, Infallible>(response)
        }
    });
    let policy = RetryPolicy::default()
        .grpc(GrpcPolicy::new())
        .deadline(secs(5));
    let client = Retry::new(server, policy);
    // 1,000 calls at 100 r/s, every one refused.
    let start = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000u32 {
        tokio::time::sleep_until(start + Duration::from_millis(10) * i).await;
        let call = client.clone().oneshot(
            Request::post("http://svc.test/pkg.Svc/Call")
                .body(Body::new(Bytes::new()))
                .unwrap(),
        );
        calls.spawn(call);
    }
    while calls.join_next().await.is_some() {}
    let per_call = attempts.load(Ordering::Relaxed) as f64 / 1000.0;
    eprintln!("RESOURCE_EXHAUSTED storm: {per_call:.3} attempts per call");
    assert!(per_call <= 1.15, "{per_call}");
}

#[tokio::test(start_paused = true)]
async fn a_quiet_scope_is_forgotten_without_being_looked_up_again() {
    let throttle = Throttle::new();
    throttle.hold(&get("http://api.test/", Some("alice")), secs(1));
    assert_eq!(throttle.scopes(), 1);
    tokio::time::advance(secs(61)).await;
    // Any lookup sweeps the map: alice's scope is not looked up, and goes.
    assert_eq!(throttle.rate(&get("http://other.test/", None)), None);
    assert_eq!(throttle.scopes(), 0, "forgotten after 60 s of quiet");
}

#[tokio::test(start_paused = true)]
async fn a_full_map_never_forgets_a_held_scope() {
    let throttle = Throttle::new();
    let key = |i: usize| {
        Request::get("http://api.test/")
            .header("x-api-key", i.to_string())
            .body(())
            .unwrap()
    };
    for i in 0..4096 {
        throttle.hold(&key(i), secs(3600));
    }
    assert_eq!(throttle.scopes(), 4096);
    // One more: no held scope is forgotten for it; it goes unpaced (documented).
    throttle.hold(&key(4096), secs(3600));
    assert_eq!(throttle.scopes(), 4096);
    assert!((0..4096).all(|i| throttle.held_until(&key(i)).is_some()));
    assert_eq!(throttle.held_until(&key(4096)), None);
}
