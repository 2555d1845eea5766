//! Real processes on Valkey: the two-stage streaming example (`examples/live-count.toml`)
//! runs on `keel worker --exec 'sh "$KEEL_PAYLOAD_FILE"'`, its consumer reading the
//! producer's stderr lines on its stdin while both run; the coordinator is SIGKILLed
//! while they stream and restarted, and the consumer's own check (every event once, in
//! order) holds: `keel result` prints the full count.

mod process;

use process::{job_file, run_keel, until, worker_exec, Serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_stage_stream_survives_a_coordinator_sigkill() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/live-count.toml"
    ))
    .unwrap();
    // Slower, so the coordinator dies while the events stream: 300 events in 3 s.
    let slowed = example.replace("sleep 0.2", "sleep 0.3");
    assert_ne!(
        slowed, example,
        "the example no longer sleeps between bursts"
    );

    let valkey = keel_valkey::server::ValkeyServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(&dir.path().join("data"), Some(valkey.url()));
    let url = serve.url();
    let c = ["--coordinator", url.as_str()];
    let state = tempfile::tempdir().unwrap();
    let options = ["--stream-stderr", "--concurrency", "2"];
    let _worker = worker_exec(
        state.path(),
        &url,
        "w1",
        "sh \"$KEEL_PAYLOAD_FILE\"",
        &options,
    );
    let path = job_file(dir.path(), "live-count", &slowed);
    let (code, out, err) = run_keel(&[&["submit", path.to_str().unwrap()][..], &c].concat());
    assert_eq!(code, 0, "{err}");
    let job: u64 = out.trim().parse().unwrap();

    let both = until(&url, job, "both stages running", |v| {
        v.tasks.iter().all(|t| t.state == "running")
    })
    .await;
    assert_eq!(both.tasks.len(), 2);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (code, before, err) = run_keel(&[&["logs", &job.to_string(), "produce"][..], &c].concat());
    assert_eq!(code, 0, "{err}");
    let streamed = before.lines().count();
    assert!(
        (1..300).contains(&streamed),
        "{streamed} events streamed before the kill"
    );
    serve.kill_and_restart();

    let done = until(&url, job, "the job finishing", |v| {
        v.status.as_ref().is_some_and(|s| !s.outcome.is_empty())
    })
    .await;
    let (_, view, _) = run_keel(&[&["status", &job.to_string()][..], &c].concat());
    assert_eq!(done.status.as_ref().unwrap().outcome, "succeeded", "{view}");
    let (code, result, err) = run_keel(&[&["result", &job.to_string()][..], &c].concat());
    assert_eq!((code, result.as_str()), (0, "300\n"), "{err}");
    let (code, logs, err) = run_keel(&[&["logs", &job.to_string(), "count"][..], &c].concat());
    assert_eq!(code, 0, "{err}");
    assert!(logs.contains("300 events so far"), "{logs}");
}
