//! Real processes: `keel serve --policy` with a tenant budget, a `keel worker` and an
//! SDK worker. A job's `attempts` budget stops a task that keeps failing after exactly
//! its limit and ends the job failed; usage reports count once per dedup key and a
//! hard limit on them ends the job; a tenant budget's soft limit is a warning on a
//! live job; a bad budget in a job file is refused naming it.

mod process;

use keel_grpc::client::ClientOptions;
use keel_grpc::worker::{Outcome, Task, UsageError, UsageRecorded, Worker, WorkerConfig};
use process::{job_file, run_keel, submit, worker, Serve};
use serde_json::Value;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(20);

fn keel_out(args: &[&str]) -> (i32, String) {
    let (code, out, err) = run_keel(args);
    (code, format!("{out}{err}"))
}

fn json(args: &[&str]) -> Value {
    let (_, out, err) = run_keel(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"))
}

/// Polls `keel status JOB` until `done` holds on its JSON.
fn until_status(url: &str, job: u64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let id = job.to_string();
    let started = Instant::now();
    loop {
        let doc = json(&["status", &id, "--coordinator", url, "--format", "json"]);
        if done(&doc) {
            return doc;
        }
        assert!(started.elapsed() < BOUND, "{what} never happened: {doc:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const POLICY: &str = "[budgets.acme.daily]\nreset = \"1d\"\nattempts = { soft = 1, hard = 1000 }\n";

#[test]
fn budgets_stop_jobs_count_reports_once_and_warn() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let serve = Serve::start_with(
        &dir.path().join("data"),
        None,
        &["--policy".into(), policy.display().to_string()],
    );
    let url = serve.url();
    let _w = worker(&url, "w1", 2);

    an_attempts_budget_stops_retries_after_exactly_its_limit(dir.path(), &url);
    reports_count_once_per_key_and_a_hard_limit_ends_the_job(dir.path(), &url);
    a_bad_budget_is_refused_naming_it(dir.path(), &url);
}

fn an_attempts_budget_stops_retries_after_exactly_its_limit(dir: &std::path::Path, url: &str) {
    let toml = "[job]\nname = \"flaky\"\n\n[defaults.retry]\nmax_attempts = 5\nbackoff = \"10ms\"\n\n\
                [budgets.tries]\nattempts = { hard = 2 }\n\n[[task]]\nid = \"fails\"\ncommand = \"exit 1\"\n";
    let job = submit(url, &job_file(dir, "flaky", toml));
    let doc = until_status(url, job, "the flaky job ending", |d| {
        d["job"]["state"] == "failed"
    });
    let task = &doc["tasks"][0];
    assert_eq!(task["attempts"].as_array().unwrap().len(), 2, "{doc:#}");
    assert_eq!(task["state"], "cancelled", "{doc:#}");
    assert_eq!(task["detail"], "budget_exhausted", "{doc:#}");
    let notes = doc["job"]["budget_notes"].to_string();
    assert!(
        notes.contains("attempts 2 reached its hard limit 2"),
        "{notes}"
    );
    let (code, text) = keel_out(&["status", &job.to_string(), "--coordinator", url]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("budget tries: attempts 2 reached its hard limit 2"),
        "{text}"
    );
    assert!(text.contains("budget_exhausted"), "{text}");
}

type Reported = Vec<Result<UsageRecorded, UsageError>>;

/// An SDK worker on lane `llm` whose handler reports k1 twice, says so, waits for a
/// go, then reports k2.
fn sdk_worker(
    url: &str,
) -> (
    tokio::runtime::Runtime,
    mpsc::Receiver<Reported>,
    mpsc::Sender<()>,
) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (reported_tx, reported) = mpsc::channel::<Reported>();
    let (go_tx, go) = mpsc::channel::<()>();
    let go = Arc::new(Mutex::new(go));
    let handler = move |task: Task| {
        let (reported_tx, go) = (reported_tx.clone(), go.clone());
        async move {
            if task.key != "call" {
                return Outcome::Complete(Vec::new());
            }
            let mut got = Vec::new();
            for key in ["k1", "k1"] {
                got.push(task.report_usage("llm", "tokens", 40, key).await);
            }
            let _ = reported_tx.send(got);
            let go = go.clone();
            let _ = tokio::task::spawn_blocking(move || go.lock().unwrap().recv()).await;
            let last = task.report_usage("llm", "tokens", 70, "k2").await;
            let _ = reported_tx.send(vec![last]);
            Outcome::Complete(Vec::new())
        }
    };
    let mut config = WorkerConfig::new(ClientOptions::new(url), "sdk", 1);
    config.lanes = vec!["llm".into()];
    runtime.spawn(Worker::new(config).run(handler, std::future::pending()));
    (runtime, reported, go_tx)
}

fn reports_count_once_per_key_and_a_hard_limit_ends_the_job(dir: &std::path::Path, url: &str) {
    let (_runtime, reported, go) = sdk_worker(url);
    let toml = "[job]\nname = \"summarize\"\ntenant = \"acme\"\nlane = \"llm\"\n\n\
                [budgets.llm]\ntokens = { hard = 100 }\n\n\
                [[task]]\nid = \"call\"\n\n[[task]]\nid = \"after\"\ndeps = [\"call\"]\n";
    let job = submit(url, &job_file(dir, "summarize", toml));
    let first = reported.recv_timeout(BOUND).expect("the first reports");
    let used: Vec<(u64, bool)> = first
        .iter()
        .map(|r| r.as_ref().map(|u| (u.used, u.duplicate)).unwrap())
        .collect();
    assert_eq!(used, [(40, false), (40, true)]);

    // While the job runs, its tenant's soft limit shows as a warning.
    let (_, text) = keel_out(&["status", &job.to_string(), "--coordinator", url]);
    assert!(
        text.contains("tenant acme's budget daily: attempts 1 reached its soft limit 1 (warning)"),
        "{text}"
    );
    let (_, listed) = keel_out(&["budgets", "--coordinator", url]);
    assert!(listed.contains("tenant acme"), "{listed}");
    assert!(listed.contains("tokens 40/100"), "{listed}");

    go.send(()).unwrap();
    let last = reported.recv_timeout(BOUND).expect("the last report");
    assert_eq!(last[0].as_ref().map(|u| u.used).unwrap(), 110);
    let doc = until_status(url, job, "the summarize job ending", |d| {
        d["job"]["state"] == "failed"
    });
    assert_eq!(doc["tasks"][1]["detail"], "budget_exhausted", "{doc:#}");

    let budgets = json(&["budgets", "--coordinator", url, "--format", "json"]);
    let llm = budgets["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["budget"] == "llm" && b["job"] == job)
        .cloned()
        .unwrap_or_else(|| panic!("no llm budget for job {job}: {budgets:#}"));
    assert_eq!(llm["dimensions"][0]["used"], 110, "{llm:#}");
    assert_eq!(llm["reports"], 2, "{llm:#}");
    assert_eq!(llm["exhausted"], "tokens", "{llm:#}");
    let tenant = budgets["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["tenant"] == "acme")
        .cloned()
        .unwrap();
    assert!(tenant["resets_at_ms"].as_u64().is_some(), "{tenant:#}");
}

fn a_bad_budget_is_refused_naming_it(dir: &std::path::Path, url: &str) {
    let toml = "[job]\nname = \"bad\"\n\n[budgets.llm]\ntokens = { soft = 12, hard = 10 }\n\n[[task]]\nid = \"a\"\n";
    let file = job_file(dir, "bad", toml);
    let path = file.display().to_string();
    let (code, text) = keel_out(&["submit", &path, "--coordinator", url]);
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("budget \"llm\" dimension \"tokens\": soft 12 is above hard 10"),
        "{text}"
    );
    assert!(text.contains(":5:1"), "{text}");
}
