//! Real processes on Valkey: the map-reduce example (`examples/wordcount.toml`) runs on
//! `keel worker --exec sh`, its coordinator is SIGKILLed mid-job and restarted, and
//! `keel result` still reads the right word counts: the map outputs that reached the
//! reduce task were the committed ones, recovered from the log.

mod process;

use process::{job_file, run_keel, until, worker_with, Serve};
use std::collections::BTreeMap;

/// The texts the example's map tasks count, in its order.
const TEXTS: [&str; 5] = [
    "the quick brown fox",
    "jumps over the lazy dog",
    "the dog barks",
    "the fox runs",
    "a quick dog and a lazy fox",
];

/// What the reduce task prints: "word count" lines, most frequent first, ties by word.
fn expected() -> String {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for word in TEXTS.iter().flat_map(|t| t.split_whitespace()) {
        *counts.entry(word).or_default() += 1;
    }
    let mut lines: Vec<(&str, u64)> = counts.into_iter().collect();
    lines.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    lines.iter().map(|(w, n)| format!("{w} {n}\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_word_count_survives_a_coordinator_sigkill_mid_job() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/wordcount.toml"
    ))
    .unwrap();
    for text in TEXTS {
        assert!(
            example.contains(text),
            "the example no longer counts {text:?}"
        );
    }
    // Each map takes a second, so the coordinator dies with the job half done.
    let slowed = example.replace("command = '''\nprintf", "command = '''\nsleep 1\nprintf");
    assert_eq!(
        slowed.matches("sleep 1").count(),
        3,
        "three map tasks slowed"
    );

    let valkey = keel_valkey::server::ValkeyServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(&dir.path().join("data"), Some(valkey.url()));
    let url = serve.url();
    let c = ["--coordinator", url.as_str()];
    let _worker = worker_with(&url, "w1", &["--concurrency", "2"]);
    let path = job_file(dir.path(), "wordcount", &slowed);
    let (code, out, err) = run_keel(&[&["submit", path.to_str().unwrap()][..], &c].concat());
    assert_eq!(code, 0, "{err}");
    let job: u64 = out.trim().parse().unwrap();

    let halfway = until(&url, job, "a map task succeeding", |v| {
        v.tasks.iter().any(|t| t.state == "succeeded")
    })
    .await;
    let reduce = halfway.tasks.iter().find(|t| t.key == "reduce").unwrap();
    assert_ne!(reduce.state, "succeeded", "the job ended before the kill");
    serve.kill_and_restart();

    let done = until(&url, job, "the job finishing", |v| {
        v.status.as_ref().is_some_and(|s| !s.outcome.is_empty())
    })
    .await;
    assert_eq!(done.status.as_ref().unwrap().outcome, "succeeded");
    let (code, result, err) = run_keel(&[&["result", &job.to_string()][..], &c].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(result, expected());
    assert!(result.starts_with("the 4\n"), "{result}");
}
