//! The floor of the HTTP benchmark: the same axum and tokio as Keysmith, answering
//! a constant. Keysmith's verified requests are compared with this.
//!
//! cargo run --release -p keysmith-server --example floor -- 127.0.0.1:9100
//!
//! With a PEM certificate chain and key after the address, it serves HTTPS through
//! Keysmith's own TLS listener (`keysmith_server::tls`), the floor of Keysmith's
//! HTTPS numbers:
//!
//! cargo run --release -p keysmith-server --example floor -- 127.0.0.1:9110 cert.pem key.pem

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::routing::get;
use std::path::Path;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().cloned().unwrap_or_else(|| "127.0.0.1:9100".to_owned());
    let app = Router::new().route("/", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    let local = listener.local_addr().unwrap();
    match (args.get(1), args.get(2)) {
        (Some(cert), Some(key)) => {
            let acceptor = keysmith_server::tls::acceptor(Path::new(cert), Path::new(key)).expect("certificate");
            let listener = keysmith_server::tls::TlsListener::new(listener, acceptor).expect("TLS listener");
            println!("floor listening on https://{local}");
            axum::serve(listener, app).await.unwrap();
        }
        _ => {
            println!("floor listening on http://{local}");
            axum::serve(listener, app).await.unwrap();
        }
    }
}
