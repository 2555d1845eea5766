//! Real processes on Valkey: a `keel serve` restarted on its data directory takes its
//! partition back at once, although its old leadership lease is still live; a second
//! server on the same directory is refused.

mod process;

use process::{keel, submit, Serve};

/// A leadership lease far longer than the test may wait: taking over by waiting for it
/// to lapse would fail the test.
const LONG_LEASE: [&str; 2] = ["--leader-ttl-ms", "600000"];

#[test]
fn a_restarted_server_takes_its_partition_back_without_waiting_for_its_lease() {
    let valkey = keel_valkey::server::ValkeyServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let extra: Vec<String> = LONG_LEASE.iter().map(|s| s.to_string()).collect();
    let mut serve = Serve::start_with(&data, Some(valkey.url()), &extra);
    let job = dir.path().join("job.toml");
    std::fs::write(&job, "[job]\nname = \"one\"\n\n[[task]]\nid = \"a\"\n").unwrap();
    let first = submit(&serve.url(), &job);

    let other = keel()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(["--valkey", &valkey.url()])
        .output()
        .expect("keel serve runs");
    assert!(!other.status.success());
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(stderr.contains("in use by another keel serve"), "{stderr}");

    // SIGKILL: the lease is never handed back. The restart prints its address only once
    // it leads the partition again.
    serve.kill_and_restart();
    std::fs::write(&job, "[job]\nname = \"two\"\n\n[[task]]\nid = \"a\"\n").unwrap();
    let second = submit(&serve.url(), &job);
    assert!(
        second > first,
        "job ids go on after the restart: {first} then {second}"
    );
    let id = std::fs::read_to_string(data.join("coordinator-id")).unwrap();
    assert!(id.starts_with("keel-serve/"), "{id}");
}
