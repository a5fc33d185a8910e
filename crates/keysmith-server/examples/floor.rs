//! The floor of the HTTP benchmark: the same axum and tokio as Keysmith, answering
//! a constant. Keysmith's verified requests are compared with this.
//!
//! cargo run --release -p keysmith-server --example floor -- 127.0.0.1:9100

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9100".to_owned());
    let app = Router::new().route("/", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("floor listening on http://{}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}
