//! The console over real sockets: live updates as server-sent events when a job
//! changes, the cap on pages receiving them, and refusals of oversized requests.

mod support;

use keel_console::serve;
use keel_engine::{JobSpec, TaskSpec};
use std::net::SocketAddr;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends a raw request and reads until `done` holds for what arrived (or the server
/// closes); what arrived.
async fn exchange(stream: &mut TcpStream, request: &[u8], done: impl Fn(&str) -> bool) -> String {
    stream.write_all(request).await.unwrap();
    read_until(stream, done).await
}

async fn read_until(stream: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if done(&text) {
                return;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .is_err()
    {
        panic!("nothing matching arrived; got so far:\n{text}");
    }
    text
}

async fn events(addr: SocketAddr) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = exchange(
        &mut stream,
        b"GET /api/events HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n",
        |t| {
            t.contains("\r\n\r\n")
                && (t.contains("event: update") || !t.starts_with("HTTP/1.1 200"))
        },
    )
    .await;
    (stream, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_hears_of_a_job_when_it_appears_and_when_it_changes() {
    let handle = coordinator().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let console = serve(handle.clone(), listener, options(false)).unwrap();
    let (mut stream, first) = events(console.local_addr()).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(first.contains("content-type: text/event-stream"), "{first}");
    assert!(
        first.contains(r#""jobs":null"#),
        "the first event says: fetch everything: {first}"
    );

    let job = submit(&handle, JobSpec::new("live", vec![TaskSpec::new("a")])).await;
    let mention = format!(r#""jobs":[{}]"#, job.get());
    let seen = read_until(&mut stream, |t| t.contains(&mention)).await;
    assert!(seen.contains(r#""jobs_active":1"#), "{seen}");

    let mut worker = Worker::register(&handle, "w1").await;
    let fence = worker.claim(&handle).await;
    worker.finish(&handle, fence, None).await;
    let seen = read_until(&mut stream, |t| {
        t.contains(&mention) && t.contains(r#""jobs_active":0"#)
    })
    .await;
    assert!(seen.contains(r#""workers":true"#), "{seen}");
    console.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_pages_are_capped_and_a_closed_page_frees_its_place() {
    let handle = coordinator().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = options(false);
    options.max_live_views = 1;
    let console = serve(handle.clone(), listener, options).unwrap();
    let addr = console.local_addr();
    let (first, head) = events(addr).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (_, refused) = events(addr).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("too_many_live_views"), "{refused}");

    drop(first);
    // The server notices the closed page at its next write; changes cause writes.
    let mut n = 0;
    let reopened = loop {
        n += 1;
        submit(
            &handle,
            JobSpec::new(format!("nudge-{n}"), vec![TaskSpec::new("a")]),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let (stream, head) = events(addr).await;
        if head.starts_with("HTTP/1.1 200") || n == 20 {
            break (stream, head);
        }
    };
    assert!(reopened.1.starts_with("HTTP/1.1 200"), "{}", reopened.1);
}

#[tokio::test]
async fn oversized_heads_and_bodies_are_refused() {
    let handle = coordinator().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let console = serve(handle.clone(), listener, options(true)).unwrap();
    let addr = console.local_addr();

    let mut stream = TcpStream::connect(addr).await.unwrap();
    let big = format!(
        "GET / HTTP/1.1\r\nhost: x\r\nx-pad: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = exchange(&mut stream, big.as_bytes(), |t| t.contains("\r\n\r\n")).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    let mut stream = TcpStream::connect(addr).await.unwrap();
    let post = "POST /api/auth HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n";
    let answer = exchange(&mut stream, post.as_bytes(), |t| {
        t.contains("body_too_large")
    })
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let mut stream = TcpStream::connect(addr).await.unwrap();
    let garbage = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n";
    let answer = exchange(&mut stream, garbage, |_| false).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );

    // The server still answers after all that.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let answer = exchange(
        &mut stream,
        b"GET /api/headline HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        |_| false,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
