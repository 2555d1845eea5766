//! Real processes: `keel serve --metrics` exposes the coordinator's and the gRPC
//! layer's metrics in Prometheus text format, with the ready queue's depth per lane.

mod process;

use process::{free_port, submit, Serve};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// One plain HTTP GET of `/metrics`; the body, or None while nothing answers.
fn scrape(port: u16) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

#[test]
fn serve_exposes_queue_depth_per_lane_and_coordinator_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = vec!["--metrics".to_string(), format!("127.0.0.1:{port}")];
    let serve = Serve::start_with(&dir.path().join("data"), None, &extra);
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        "[job]\nname = \"waiting\"\nlane = \"batch\"\n\n\
         [[task]]\nid = \"a\"\n\n[[task]]\nid = \"b\"\n\n[[task]]\nid = \"c\"\n",
    )
    .unwrap();
    submit(&serve.url(), &job);

    // No worker runs: the three tasks stay queued in lane "batch". The per-lane depth
    // is recounted every few seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = scrape(port).unwrap_or_default();
        if text.contains("keel_lane_queue_depth{lane=\"batch\"} 3\n") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no lane depth of 3 for \"batch\" in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        text.contains("# TYPE keel_lane_queue_depth gauge"),
        "{text}"
    );
    assert!(
        text.contains("keel_coordinator_leader{partition=\"0\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("keel_claim_to_start_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains("keel_coordinator_append_batch_size"),
        "{text}"
    );
}
