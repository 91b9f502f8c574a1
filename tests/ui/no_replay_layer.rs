// The README's quick start with a body that can be read only once and no `ReplayBodyLayer`.
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_http_retry::{RetryLayer, RetryPolicy};

type Upload = BoxBody<Bytes, std::io::Error>;

async fn upload(body: Upload) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Upload>();
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::default()))
        .service(client);
    let request = http::Request::put("http://127.0.0.1:8080/files/7")
        .body(body)
        .unwrap();
    let _ = service.oneshot(request).await;
}

fn main() {
    let _ = upload;
}
