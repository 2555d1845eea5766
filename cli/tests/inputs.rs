//! Real processes: a `keel worker --exec` command reads the outputs of the tasks it
//! depends on as files in `$KEEL_INPUTS_DIR` (none for one that did not succeed, an
//! empty file for an empty output), and a task resumed by `keel signal --payload`
//! reads the payload in `$KEEL_SIGNAL_FILE`; both are gone when the attempt ends.

mod process;

use keel_grpc::client::ClientOptions;
use keel_grpc::worker::{Outcome, Task, Worker, WorkerConfig};
use process::{job_file, keel, run_keel, submit, until, worker_with, Serve};
use serde_json::Value;

#[test]
fn a_downstream_shell_task_reads_its_upstream_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let c = ["--coordinator", url.as_str()];
    let _w = worker_with(&url, "w1", &["--concurrency", "2"]);
    let seen = dir.path().join("inputs-dir");
    let spec = job_file(
        dir.path(),
        "flow",
        &format!(
            "[job]\nname = \"flow\"\n\n[defaults]\nretry = {{ max_attempts = 1 }}\n\n\
             [[task]]\nid = \"words\"\ncommand = \"printf 'a b c'\"\n\n\
             [[task]]\nid = \"empty\"\ncommand = \"true\"\n\n\
             [[task]]\nid = \"broken\"\ncommand = \"exit 1\"\nallow_failure = true\n\n\
             [[task]]\nid = \"count\"\ndeps = [\"words\", \"empty\"]\n\
             command = '''\n\
             printf '%s' \"$KEEL_INPUTS_DIR\" > {seen}\n\
             for f in \"$KEEL_INPUTS_DIR\"/*; do printf '%s=[%s] ' \"${{f##*/}}\" \"$(cat \"$f\")\"; done\n\
             printf 'signal %s' \"${{KEEL_SIGNAL_FILE-unset}}\"\n'''\n\n\
             [[task]]\nid = \"either\"\ndeps = {{ quorum = 1, of = [\"broken\", \"words\"] }}\n\
             command = \"ls -A \\\"$KEEL_INPUTS_DIR\\\" | tr '\\\\n' ' '\"\n",
            seen = seen.display()
        ),
    );
    let (code, out, err) = run_keel(
        &[
            &["submit", spec.to_str().unwrap(), "--wait", "--result"][..],
            &c,
        ]
        .concat(),
    );
    // "broken" fails (allowed), so the job succeeds.
    assert_eq!(code, 0, "{out}\n{err}");
    let result: Value = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
    assert_eq!(result["count"], "empty=[] words=[a b c] signal unset");
    // The failed upstream task has no file, whenever it failed.
    assert_eq!(result["either"], "words ");
    let inputs_dir = std::fs::read_to_string(&seen).unwrap();
    assert!(inputs_dir.contains("inputs-"), "{inputs_dir}");
    assert!(
        !std::path::Path::new(&inputs_dir).exists(),
        "{inputs_dir} outlived its attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_shell_task_reads_the_signal_payload() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    // An SDK worker suspends the task on its first lease, then stops.
    let handler = |_task: Task| async {
        Outcome::Suspend {
            waitpoint: "approval".into(),
            timeout: None,
            on_timeout: Default::default(),
        }
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = WorkerConfig::new(ClientOptions::new(url.as_str()), "sdk", 1);
    let sdk = tokio::spawn(Worker::new(config).run(handler, async {
        let _ = stopped.await;
    }));
    let spec = job_file(
        dir.path(),
        "gated",
        "[job]\nname = \"gated\"\n\n[[task]]\nid = \"deploy\"\n\
         command = 'cat \"$KEEL_SIGNAL_FILE\"; ls -A \"$KEEL_INPUTS_DIR\"'\n",
    );
    let job = submit(&url, &spec);
    until(&url, job, "the task suspending", |v| {
        v.tasks.iter().any(|t| t.state == "suspended")
    })
    .await;
    let _ = stop.send(());
    sdk.await.unwrap().unwrap();
    // A shell worker runs the resumed attempt.
    let _w = worker_with(&url, "shell", &[]);
    let args: Vec<String> = [
        "signal",
        &job.to_string(),
        "deploy",
        "approval",
        "--coordinator",
        &url,
        "--payload",
        "approved by ada",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || keel().args(args).output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let done = until(&url, job, "the job finishing", |v| {
        v.status.as_ref().is_some_and(|s| !s.outcome.is_empty())
    })
    .await;
    assert_eq!(done.status.unwrap().outcome, "succeeded");
    let read = move || run_keel(&["output", &job.to_string(), "deploy", "--coordinator", &url]);
    let (code, out, err) = tokio::task::spawn_blocking(read).await.unwrap();
    assert_eq!((code, out.as_str()), (0, "approved by ada"), "{err}");
}

#[test]
fn an_upstream_key_that_would_leave_the_inputs_directory_fails_the_task_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let c = ["--coordinator", url.as_str()];
    let state = tempfile::tempdir().unwrap();
    let _w = process::worker_in(state.path(), &url, "w1", &[]);
    let spec = job_file(
        dir.path(),
        "tricks",
        "[job]\nname = \"tricks\"\n\n[defaults]\nretry = { max_attempts = 3 }\n\n\
         [[task]]\nid = \"../escape\"\ncommand = \"printf owned\"\n\n\
         [[task]]\nid = \"reader\"\ndeps = [\"../escape\"]\ncommand = \"true\"\n",
    );
    let (code, out, err) =
        run_keel(&[&["submit", spec.to_str().unwrap(), "--wait"][..], &c].concat());
    assert_eq!(code, 3, "{out}\n{err}");
    let job = out.lines().next().unwrap().to_string();
    let (_, text, _) = run_keel(&[&["status", &job][..], &c].concat());
    assert!(
        text.contains("upstream task key \"../escape\" cannot be a file name in $KEEL_INPUTS_DIR"),
        "{text}"
    );
    assert!(!text.contains("attempt 2"), "retried: {text}");
    // Nothing was written beside the worker's inputs directories.
    let stray: Vec<_> = walk(state.path())
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "escape"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}
