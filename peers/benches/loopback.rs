//! Loopback HTTP: one hyper HTTP/1.1 server on 127.0.0.1 (its own thread and runtime), and each client
//! sending `REQUESTS` PUTs (ten headers, 1 KiB body) per batch with `IN_FLIGHT` outstanding. Timed in
//! interleaved rounds, then by criterion (requests per second);
//! `cargo run --release -p peer-benches --bin summary` gives the ratios to the bare client.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use peer_benches::loopback::{
    client_runtime, drive, hyper_client, reqwest_client, reqwest_retry_client, send_reqwest,
    send_reqwest_middleware, send_tower, tower_http_retry_client, tower_retry_client, Server,
};
use peer_benches::paired::{interleave, rounds, Contender};
use peer_benches::report;
use peer_benches::workload::Workload;
use tokio::runtime::Runtime;

/// Requests per batch.
const REQUESTS: usize = 1024;
/// Requests outstanding at any time.
const IN_FLIGHT: usize = 32;
/// Interleaved rounds.
const ROUNDS: usize = 31;

const GROUP: &str = "loopback";

/// The loopback contenders, each sending one batch and returning its time.
struct Clients<'a> {
    runtime: &'a Runtime,
    workload: &'a Workload,
}

impl Clients<'_> {
    fn timed(&self, batch: impl std::future::Future<Output = ()>) -> Duration {
        let start = Instant::now();
        self.runtime.block_on(batch);
        start.elapsed()
    }

    fn tower<S, B>(&self, client: &S) -> Duration
    where
        S: tower::Service<
                http::Request<http_body_util::Full<bytes::Bytes>>,
                Response = http::Response<B>,
            > + Clone
            + Send
            + 'static,
        S::Error: std::fmt::Debug,
        S::Future: Send,
        B: http_body::Body + Send,
        B::Data: Send,
        B::Error: std::fmt::Debug,
    {
        self.timed(drive(
            client,
            self.workload,
            REQUESTS,
            IN_FLIGHT,
            |mut c, w, n| async move {
                for _ in 0..n {
                    send_tower(&mut c, &w).await;
                }
            },
        ))
    }

    fn reqwest(&self, client: &reqwest::Client) -> Duration {
        self.timed(drive(
            client,
            self.workload,
            REQUESTS,
            IN_FLIGHT,
            |c, w, n| async move {
                for _ in 0..n {
                    send_reqwest(&c, &w).await;
                }
            },
        ))
    }

    fn middleware(&self, client: &reqwest_middleware::ClientWithMiddleware) -> Duration {
        self.timed(drive(
            client,
            self.workload,
            REQUESTS,
            IN_FLIGHT,
            |c, w, n| async move {
                for _ in 0..n {
                    send_reqwest_middleware(&c, &w).await;
                }
            },
        ))
    }
}

fn main() {
    let server = Server::start().expect("a loopback server");
    let workload = Workload::new(server.uri());
    let runtime = client_runtime();
    let clients = Clients {
        runtime: &runtime,
        workload: &workload,
    };
    let bare = hyper_client();
    let tower = tower_retry_client();
    let ours = tower_http_retry_client();
    let reqwest = reqwest_client();
    let middleware = reqwest_retry_client();

    // One batch each opens the connections the rounds then reuse.
    let mut contenders = [
        Contender::new("bare", REQUESTS as u64, || clients.tower(&bare)),
        Contender::new("tower_retry", REQUESTS as u64, || clients.tower(&tower)),
        Contender::new("tower_http_retry", REQUESTS as u64, || clients.tower(&ours)),
        Contender::new("reqwest", REQUESTS as u64, || clients.reqwest(&reqwest)),
        Contender::new("reqwest_middleware_retry", REQUESTS as u64, || {
            clients.middleware(&middleware)
        }),
    ];
    let mut sent = 0;
    for contender in &mut contenders {
        (contender.run)();
        sent += REQUESTS;
    }
    let results = interleave(rounds(ROUNDS), &mut contenders);
    sent += rounds(ROUNDS) * contenders.len() * REQUESTS;
    drop(contenders);
    let path = report::paired_file(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")), GROUP);
    report::write_paired(&path, GROUP, &results).expect("the figures are written");

    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let mut group = criterion.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(REQUESTS as u64));
    let mut bench = |name: &str, batch: &mut dyn FnMut() -> Duration| {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                sent += REQUESTS * iters as usize;
                (0..iters).map(|_| batch()).sum()
            })
        });
    };
    bench("bare", &mut || clients.tower(&bare));
    bench("tower_retry", &mut || clients.tower(&tower));
    bench("tower_http_retry", &mut || clients.tower(&ours));
    bench("reqwest", &mut || clients.reqwest(&reqwest));
    bench("reqwest_middleware_retry", &mut || {
        clients.middleware(&middleware)
    });
    group.finish();
    criterion.final_summary();
    assert_eq!(
        server.served(),
        sent,
        "every request sent was answered once"
    );
}
