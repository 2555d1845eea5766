//! Real processes on Valkey: a standby started on the address of a paused leader fails
//! to bind before it ever asks for the partition, so it cannot take the partition and
//! then leave it unserved; the leader, resumed after its lease lapsed, takes its
//! partition back and serves on.

mod process;

use process::{keel, Serve, BOUND};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// `keel submit`, retried while the coordinator is not serving yet.
fn submit_eventually(url: &str, job_file: &std::path::Path) -> u64 {
    let start = Instant::now();
    loop {
        let out = keel()
            .arg("submit")
            .arg(job_file)
            .args(["--coordinator", url])
            .output()
            .expect("keel submit runs");
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("keel submit printed a job id");
        }
        assert!(
            start.elapsed() < BOUND,
            "nothing serves {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_standby_on_a_paused_leaders_address_never_takes_the_partition() {
    let valkey = keel_valkey::server::ValkeyServer::start();
    let dir = tempfile::tempdir().unwrap();
    let short = ["--leader-ttl-ms", "1000"].map(String::from);
    let leader = Serve::start_with(&dir.path().join("a"), Some(valkey.url()), &short);
    let job = dir.path().join("job.toml");
    std::fs::write(&job, "[job]\nname = \"one\"\n\n[[task]]\nid = \"a\"\n").unwrap();
    let first = submit_eventually(&leader.url(), &job);

    leader.signal("STOP");
    // Past the leader's lease: a standby elsewhere could take the partition now.
    std::thread::sleep(Duration::from_millis(2_000));
    let mut standby = keel()
        .args(["serve", "--listen", &format!("127.0.0.1:{}", leader.port)])
        .arg("--data-dir")
        .arg(dir.path().join("b"))
        .args(["--valkey", &valkey.url(), "--leader-ttl-ms", "1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keel serve starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = standby.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            started.elapsed() < BOUND,
            "the standby neither served nor exited"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut said = String::new();
    std::io::Read::read_to_string(&mut standby.stderr.take().unwrap(), &mut said).unwrap();
    assert!(!status.success());
    assert!(said.contains("Address already in use"), "{said}");
    assert!(
        !said.contains("leading"),
        "the standby took the partition before binding:\n{said}"
    );

    leader.signal("CONT");
    std::fs::write(&job, "[job]\nname = \"two\"\n\n[[task]]\nid = \"a\"\n").unwrap();
    let second = submit_eventually(&leader.url(), &job);
    assert!(second > first, "job ids go on: {first} then {second}");
}
