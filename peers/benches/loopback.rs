//! Loopback HTTP: one hyper HTTP/1.1 server on 127.0.0.1 (its own thread and runtime), and each client
//! sending `REQUESTS` PUTs (ten headers, 1 KiB body) per iteration with `IN_FLIGHT` outstanding.
//! Criterion reports requests per second; `cargo run -p peer-benches --bin summary` gives the ratios.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use peer_benches::loopback::{
    client_runtime, drive, hyper_client, reqwest_client, reqwest_retry_client, send_reqwest,
    send_reqwest_middleware, send_tower, tower_http_retry_client, tower_retry_client, Server,
};
use peer_benches::workload::Workload;

/// Requests per iteration.
const REQUESTS: usize = 1024;
/// Requests outstanding at any time.
const IN_FLIGHT: usize = 32;

fn main() {
    let server = Server::start().expect("a loopback server");
    let workload = Workload::new(server.uri());
    let runtime = client_runtime();
    let mut sent = 0usize;

    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let mut group = criterion.benchmark_group("loopback");
    group.throughput(Throughput::Elements(REQUESTS as u64));

    let mut run = |name: &str, once: &mut dyn FnMut()| {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    once();
                }
                start.elapsed()
            })
        });
    };

    let client = hyper_client();
    run("bare", &mut || {
        runtime.block_on(drive(
            &client,
            &workload,
            REQUESTS,
            IN_FLIGHT,
            |mut c, w, n| async move {
                for _ in 0..n {
                    send_tower(&mut c, &w).await;
                }
            },
        ));
        sent += REQUESTS;
    });
    drop(client);

    let client = tower_retry_client();
    run("tower_retry", &mut || {
        runtime.block_on(drive(
            &client,
            &workload,
            REQUESTS,
            IN_FLIGHT,
            |mut c, w, n| async move {
                for _ in 0..n {
                    send_tower(&mut c, &w).await;
                }
            },
        ));
        sent += REQUESTS;
    });
    drop(client);

    let client = tower_http_retry_client();
    run("tower_http_retry", &mut || {
        runtime.block_on(drive(
            &client,
            &workload,
            REQUESTS,
            IN_FLIGHT,
            |mut c, w, n| async move {
                for _ in 0..n {
                    send_tower(&mut c, &w).await;
                }
            },
        ));
        sent += REQUESTS;
    });
    drop(client);

    let client = reqwest_client();
    run("reqwest", &mut || {
        runtime.block_on(drive(
            &client,
            &workload,
            REQUESTS,
            IN_FLIGHT,
            |c, w, n| async move {
                for _ in 0..n {
                    send_reqwest(&c, &w).await;
                }
            },
        ));
        sent += REQUESTS;
    });
    drop(client);

    let client = reqwest_retry_client();
    run("reqwest_middleware_retry", &mut || {
        runtime.block_on(drive(
            &client,
            &workload,
            REQUESTS,
            IN_FLIGHT,
            |c, w, n| async move {
                for _ in 0..n {
                    send_reqwest_middleware(&c, &w).await;
                }
            },
        ));
        sent += REQUESTS;
    });
    drop(client);

    group.finish();
    criterion.final_summary();
    assert_eq!(
        server.served(),
        sent,
        "every request sent was answered once"
    );
}
