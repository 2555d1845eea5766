//! Real processes: `keel status` and `keel submit --wait` exit with a status that says
//! how the job ended (0 succeeded or still running, 3 failed, 4 cancelled, 5 deadline
//! exceeded, 6 not found, 7 unreachable, 8 --timeout), `keel cancel` ends a running
//! job, and the `--format json` documents parse with the documented fields.

mod process;

use process::{free_port, job_file, run_keel, until, worker_with, Serve};
use serde_json::Value;

const OK: &str = "[job]\nname = \"ok\"\n\n[[task]]\nid = \"only\"\ncommand = \"true\"\n";
const FAILS: &str = "[job]\nname = \"fails\"\n\n[defaults]\nretry = { max_attempts = 1 }\n\n[[task]]\nid = \"boom\"\ncommand = \"echo broken >&2; exit 3\"\n";
const LATE: &str = "[job]\nname = \"late\"\ndeadline = \"1s\"\n\n[[task]]\nid = \"slow\"\ncommand = \"sleep 30\"\n";
const LONG: &str = "[job]\nname = \"long\"\n\n[[task]]\nid = \"wait\"\ncommand = \"sleep 30\"\n";

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_statuses_follow_the_jobs_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let _w = worker_with(&url, "w1", &["--all-lanes", "--concurrency", "4"]);
    let c = ["--coordinator", url.as_str()];
    let wait = |name: &str, toml: &str| {
        let path = job_file(dir.path(), name, toml);
        let path = path.to_str().unwrap().to_string();
        run_keel(&[&["submit", &path, "--wait"][..], &c].concat())
    };

    let (code, out, err) = wait("ok", OK);
    assert_eq!(code, 0, "{err}");
    let ok: u64 = out.trim().parse().unwrap();
    assert!(err.contains(&format!("job {ok}: succeeded")), "{err}");
    assert_eq!(
        run_keel(&[&["status", &ok.to_string()][..], &c].concat()).0,
        0
    );

    let (code, out, err) = wait("fails", FAILS);
    assert_eq!(code, 3, "a failed job: {err}");
    let failed = out.trim().to_string();
    let (code, text, _) = run_keel(&[&["status", &failed][..], &c].concat());
    assert_eq!(code, 3);
    assert!(text.contains("broken"), "the error is shown: {text}");

    let (code, _, err) = wait("late", LATE);
    assert_eq!(code, 5, "a job past its deadline: {err}");

    // A running job's status exits 0; cancelled, it exits 4.
    let long = job_file(dir.path(), "long", LONG);
    let (code, out, _) = run_keel(&[&["submit", long.to_str().unwrap()][..], &c].concat());
    assert_eq!(code, 0);
    let job: u64 = out.trim().parse().unwrap();
    until(&url, job, "the long task running", |v| {
        v.tasks.iter().any(|t| t.state == "running")
    })
    .await;
    let id = job.to_string();
    assert_eq!(run_keel(&[&["status", &id][..], &c].concat()).0, 0);
    let (code, out, err) = run_keel(&[&["cancel", &id][..], &c].concat());
    assert_eq!(
        (code, out.trim()),
        (0, format!("job {job} cancelled").as_str()),
        "{err}"
    );
    let (code, out, _) = run_keel(&[&["cancel", &id][..], &c].concat());
    assert_eq!(code, 0);
    assert!(out.contains("already finished (cancelled)"), "{out}");
    let (code, doc, _) = run_keel(&[&["status", &id, "--format", "json"][..], &c].concat());
    assert_eq!(code, 4);
    let doc = json(&doc);
    assert_eq!(doc["job"]["state"], "cancelled");
    assert_eq!(doc["tasks"][0]["key"], "wait");
    assert_eq!(doc["tasks"][0]["state"], "cancelled");
    let attempt = &doc["tasks"][0]["attempts"][0];
    assert_eq!(attempt["end"], "job_cancelled");
    assert!(attempt["duration_ms"].as_u64().is_some(), "{attempt}");
    assert!(
        attempt["started_at"].as_str().unwrap().contains('T'),
        "{attempt}"
    );

    // Unknown job, unknown id, nobody listening.
    let (code, _, err) = run_keel(&[&["status", "999"][..], &c].concat());
    assert_eq!(code, 6, "{err}");
    assert_eq!(run_keel(&[&["cancel", "999"][..], &c].concat()).0, 6);
    assert_eq!(run_keel(&[&["status", "nope"][..], &c].concat()).0, 1);
    let nobody = format!("http://127.0.0.1:{}", free_port());
    for command in [
        &["status", "1"][..],
        &["jobs"],
        &["workers"],
        &["cancel", "1"],
        &["retry", "1"],
    ] {
        let (code, _, err) = run_keel(&[command, &["--coordinator", &nobody]].concat());
        assert_eq!(code, 7, "keel {command:?} with no coordinator: {err}");
        assert!(err.contains("cannot reach the coordinator"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_wait_reports_json_and_stops_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let c = ["--coordinator", url.as_str()];
    let long = job_file(dir.path(), "long", LONG);
    let long = long.to_str().unwrap();

    // No worker: the job cannot start. Plain progress lines go to stderr.
    let (code, out, err) =
        run_keel(&[&["submit", long, "--wait", "--timeout", "1s"][..], &c].concat());
    assert_eq!(code, 8, "{err}");
    let job: u64 = out.trim().parse().unwrap();
    assert!(err.contains(&format!("job {job}: 0/1 done")), "{err}");
    assert!(err.contains("keeps running"), "{err}");
    assert!(
        err.contains("warning: no live worker is connected"),
        "{err}"
    );
    let (code, doc, _) = run_keel(
        &[
            &[
                "submit",
                long,
                "--wait",
                "--timeout",
                "1s",
                "--format",
                "json",
            ][..],
            &c,
        ]
        .concat(),
    );
    assert_eq!(code, 8);
    let doc = json(&doc);
    assert_eq!(doc["job"], job, "the same spec is the same job");
    assert_eq!(doc["duplicate"], true);
    assert_eq!(doc["timed_out"], true);
    assert_eq!(doc["state"], "running");
    assert_eq!(doc["status"]["tasks"][0]["state"], "queued");
    assert_eq!(
        run_keel(&[&["submit", long, "--wait", "--timeout", "1x"][..], &c].concat()).0,
        2
    );

    // The coordinator goes away while a submission waits: it says so and for how long.
    let waiting = std::thread::spawn({
        let c = c.map(str::to_string);
        let long = long.to_string();
        move || {
            let args = ["submit", &long, "--wait", "--timeout", "4s", &c[0], &c[1]];
            run_keel(&args)
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(800));
    serve.kill();
    let (code, _, err) = waiting.join().unwrap();
    serve.restart();
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("coordinator unreachable for"), "{err}");
    assert!(err.contains("without reaching the coordinator"), "{err}");

    // The waiting job is cancelled; a worker comes, and a new job runs to the end,
    // reported as JSON.
    let (code, _, err) = run_keel(&[&["cancel", &job.to_string()][..], &c].concat());
    assert_eq!(code, 0, "{err}");
    let ok = job_file(dir.path(), "ok", OK);
    let _w = worker_with(&url, "w1", &[]);
    let (code, doc, err) = run_keel(
        &[
            &["submit", ok.to_str().unwrap(), "--wait", "--format", "json"][..],
            &c,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    let doc = json(&doc);
    assert_eq!(doc["state"], "succeeded");
    assert_eq!(doc["timed_out"], false);
    assert_eq!(doc["status"]["job"]["task_states"]["succeeded"], 1);
    assert_eq!(doc["status"]["tasks"][0]["attempts"][0]["worker"], "w1");
}
