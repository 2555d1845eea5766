//! A client that cannot use an address says which address and why, against real
//! sockets: a closed port, a port that accepts and never answers, a plain HTTP/1
//! server, and TLS on one side only. None of them takes longer than the connect timeout.

mod support;

use keel_grpc::client::{Client, ClientError, ClientOptions};
use keel_grpc::server::{ServerOptions, TlsFiles};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::Cluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_millis(500);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

fn options(url: &str) -> ClientOptions {
    ClientOptions {
        connect_timeout: TIMEOUT,
        ..ClientOptions::new(url)
    }
}

/// The error connecting with `options` gives, and how long it took.
async fn failure(options: ClientOptions) -> (String, Duration) {
    let started = Instant::now();
    let bound = TIMEOUT * 6;
    let result = tokio::time::timeout(bound, options.jobs())
        .await
        .unwrap_or_else(|_| panic!("connecting to {} took over {bound:?}", options.url));
    let error = result.expect_err("the connection was not refused");
    assert!(matches!(error, ClientError::Unreachable(_)), "{error:?}");
    (error.to_string(), started.elapsed())
}

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_connection_refused() {
    let (l, url) = listener().await;
    drop(l);
    let (error, _) = failure(options(&url)).await;
    assert_eq!(
        error,
        format!(
            "cannot reach the coordinator at {url}: connection refused (nothing listens there)"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_accepts_and_never_answers_times_out() {
    let (l, url) = listener().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let (error, took) = failure(options(&url)).await;
    assert_eq!(
        error,
        format!("cannot reach the coordinator at {url}: timed out: the connection was accepted but nothing answered within 500 ms")
    );
    assert!(took < TIMEOUT * 3, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http1_server_is_not_a_grpc_server() {
    let (l, url) = listener().await;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let answer =
                    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    let (error, _) = failure(options(&url)).await;
    assert_eq!(
        error,
        format!("cannot reach the coordinator at {url}: not a gRPC server: it answered HTTP/1: \"HTTP/1.1 400 Bad Request\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_one_side_only_is_a_tls_mismatch() {
    let tls = Cluster::start(ServerOptions {
        tls: Some(TlsFiles {
            cert: fixture("server.pem"),
            key: fixture("server.key"),
        }),
        ..ServerOptions::default()
    })
    .await;
    let plain_url = tls.url.replace("https://", "http://");
    let (error, _) = failure(options(&plain_url)).await;
    assert_eq!(
        error,
        format!("cannot reach the coordinator at {plain_url}: TLS mismatch: the server expects TLS; use an https:// URL (with --tls-ca)")
    );

    let plain = Cluster::start(ServerOptions::default()).await;
    let tls_url = plain.url.replace("http://", "https://");
    let secure = ClientOptions {
        ca: Some(fixture("ca.pem")),
        domain: Some("localhost".into()),
        ..options(&tls_url)
    };
    let (error, _) = failure(secure).await;
    assert_eq!(
        error,
        format!("cannot reach the coordinator at {tls_url}: TLS mismatch: the server does not use TLS; use an http:// URL")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_addresses_are_each_named_and_the_reachable_one_is_used() {
    let (closed, closed_url) = listener().await;
    drop(closed);
    let cluster = Cluster::start(ServerOptions::default()).await;
    let both = format!("{closed_url},{}", cluster.url);
    let mut client = Client::connect(options(&both)).await.unwrap();
    assert_eq!(client.address(), Some(cluster.url.as_str()));
    assert!(client.list_jobs().await.is_ok());

    let (silent, silent_url) = listener().await;
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let (error, _) = failure(options(&format!("{closed_url},{silent_url}"))).await;
    assert!(
        error.starts_with("no coordinator leads among 2 addresses: "),
        "{error}"
    );
    assert!(
        error.contains(&format!("{closed_url}: connection refused")),
        "{error}"
    );
    assert!(
        error.contains(&format!("{silent_url}: timed out")),
        "{error}"
    );
}
