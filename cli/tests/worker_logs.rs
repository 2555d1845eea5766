//! Real processes: `keel worker` says what it serves when it starts and logs one line
//! when each task attempt starts and one when it ends (task, attempt, outcome,
//! duration), as text or, with `--log-format json`, as one JSON object per line.

mod process;

use process::{job_file, run_keel, until, worker_logged, Serve, BOUND};
use serde_json::Value;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const JOB: &str =
    "[job]\nname = \"mixed\"\nlane = \"work\"\n\n[defaults]\nretry = { max_attempts = 1 }\n\n\
[[task]]\nid = \"good\"\ncommand = \"sleep 0.2\"\n\n\
[[task]]\nid = \"bad\"\ncommand = \"echo nope >&2; exit 4\"\n\n\
[[task]]\nid = \"stuck\"\ncommand = \"sleep 30\"\n";

/// Lines from `rx` until `done` holds for the ones read so far.
fn read_until(rx: &Receiver<String>, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let started = Instant::now();
    let mut lines = Vec::new();
    while !done(&lines) {
        let left = BOUND.saturating_sub(started.elapsed());
        match rx.recv_timeout(left.min(Duration::from_secs(1))) {
            Ok(line) => lines.push(line),
            Err(_) if started.elapsed() < BOUND => {}
            Err(e) => panic!("{e}: the worker logged only {lines:#?}"),
        }
    }
    lines
}

/// Runs JOB on a worker logging in `format`; cancels it once `good` and `bad` ended,
/// so `stuck` is revoked. Returns every line the worker wrote until it stopped.
async fn logs(format: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let options = [
        "--lane",
        "work",
        "--capability",
        "disk",
        "--concurrency",
        "3",
        "--log-format",
        format,
    ];
    let (mut worker, rx) = worker_logged(&url, "w1", "sh", &options);
    let path = job_file(dir.path(), "mixed", JOB);
    let (code, out, err) = run_keel(&["submit", path.to_str().unwrap(), "--coordinator", &url]);
    assert_eq!(code, 0, "{err}");
    let job: u64 = out.trim().parse().unwrap();
    until(&url, job, "good and bad ended", |v| {
        v.tasks[..2]
            .iter()
            .all(|t| t.state == "succeeded" || t.state == "failed")
            && v.tasks[2].state == "running"
    })
    .await;
    assert_eq!(
        run_keel(&["cancel", &job.to_string(), "--coordinator", &url]).0,
        0
    );
    let mut lines = read_until(&rx, |l| l.iter().any(|l| l.contains("revoked")));
    worker.signal("TERM");
    worker.wait_exit(BOUND);
    lines.extend(rx.try_iter());
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let lines = logs("json").await;
    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let find = |event: &str, key: Option<u64>| {
        events
            .iter()
            .find(|e| e["event"] == event && key.is_none_or(|t| e["task"] == t))
            .unwrap_or_else(|| panic!("no {event} for {key:?} in {events:#?}"))
            .clone()
    };
    let first = &events[0];
    assert_eq!(first["event"], "worker_started");
    assert_eq!(first["worker"], "w1");
    assert_eq!(first["lanes"], serde_json::json!(["work"]));
    assert_eq!(first["capabilities"], serde_json::json!(["disk"]));
    assert_eq!(first["concurrency"], 3);
    assert!(first["time"].as_str().unwrap().contains('T'));
    // Tasks 1, 2, 3 are good, bad, stuck.
    let started = find("task_started", Some(1));
    assert_eq!(
        (started["job"].as_u64(), started["attempt"].as_u64()),
        (Some(1), Some(1))
    );
    let good = find("task_finished", Some(1));
    assert_eq!(
        (good["outcome"].as_str(), good["key"].as_str()),
        (Some("succeeded"), Some("good"))
    );
    assert!(good["duration_ms"].as_u64().unwrap() >= 200, "{good}");
    let bad = find("task_finished", Some(2));
    assert_eq!(bad["outcome"], "failed");
    assert!(bad["error"].as_str().unwrap().contains("nope"), "{bad}");
    assert_eq!(bad["permanent"], false);
    assert_eq!(find("task_finished", Some(3))["outcome"], "revoked");
    assert_eq!(events.last().unwrap()["event"], "worker_stopped");
    // The SDK's own log lines are JSON too.
    assert!(events.iter().any(|e| e["level"] == "info"), "{events:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_name_the_task_attempt_outcome_and_duration() {
    let lines = logs("text").await;
    let text = lines.join("\n");
    assert!(
        lines[0].ends_with(" worker w1 serving lanes work, capabilities disk, concurrency 3"),
        "{text}"
    );
    assert!(
        text.contains(" task j1/good (t1) attempt 1 started"),
        "{text}"
    );
    let good = lines
        .iter()
        .find(|l| l.contains("task j1/good (t1) attempt 1 succeeded after "))
        .unwrap();
    assert!(good.ends_with('s'), "{good}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("task j1/bad (t2) attempt 1 failed after ")
                && l.ends_with(": exit status: 4: nope")),
        "{text}"
    );
    assert!(
        text.contains("task j1/stuck (t3) attempt 1 revoked after "),
        "{text}"
    );
    assert!(
        text.contains("keel worker: 1 completed, 1 failed, 1 revoked"),
        "{text}"
    );
}
