//! Real processes: `keel signal` resumes a task that an SDK worker suspended on a
//! waitpoint of a `keel serve` coordinator, and a repeated key is reported as already
//! delivered.

mod process;

use keel_grpc::client::ClientOptions;
use keel_grpc::worker::{Outcome, Task, Worker, WorkerConfig};
use process::{keel, submit, until, Serve};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Runs `keel signal` and returns (success, stdout, stderr).
async fn signal(url: &str, job: u64, task: &str, waitpoint: &str) -> (bool, String, String) {
    let args: Vec<String> = vec![
        "signal".into(),
        job.to_string(),
        task.into(),
        waitpoint.into(),
        "--coordinator".into(),
        url.into(),
        "--key".into(),
        "approve-1".into(),
    ];
    let out = tokio::task::spawn_blocking(move || keel().args(args).output())
        .await
        .unwrap()
        .expect("keel signal runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keel_signal_resumes_a_suspended_task_once_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let leases = Arc::new(AtomicU32::new(0));
    let seen = leases.clone();
    let handler = move |_task: Task| {
        let first = seen.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                Outcome::Suspend {
                    waitpoint: "approval".into(),
                    timeout: None,
                    on_timeout: Default::default(),
                }
            } else {
                Outcome::Complete(Vec::new())
            }
        }
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = WorkerConfig::new(ClientOptions::new(url.as_str()), "w1", 1);
    let worker = tokio::spawn(Worker::new(config).run(handler, async {
        let _ = stopped.await;
    }));
    let job_path = dir.path().join("job.toml");
    std::fs::write(
        &job_path,
        "[job]\nname = \"gated\"\n\n[[task]]\nid = \"deploy\"\ncommand = 'true'\n",
    )
    .unwrap();
    let job = submit(&url, &job_path);
    let view = until(&url, job, "the task suspending", |v| {
        v.tasks.iter().any(|t| t.state == "suspended")
    })
    .await;
    let id = view.tasks[0].id;

    let (ok, _, err) = signal(&url, job, "deploy", "elsewhere").await;
    assert!(!ok, "a signal to the wrong waitpoint succeeded");
    assert!(err.contains("not_waiting"), "{err}");
    let (ok, out, err) = signal(&url, job, "deploy", "approval").await;
    assert!(ok, "{err}");
    assert_eq!(out, format!("t{id} resumed"));
    let (ok, out, err) = signal(&url, job, &format!("t{id}"), "approval").await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!("t{id}: signal \"approve-1\" was already delivered")
    );

    let done = until(&url, job, "the job finishing", |v| {
        v.status.as_ref().is_some_and(|s| !s.outcome.is_empty())
    })
    .await;
    assert_eq!(done.status.unwrap().outcome, "succeeded");
    assert_eq!(leases.load(Ordering::SeqCst), 2);
    let _ = stop.send(());
    let summary = worker.await.unwrap().unwrap();
    assert_eq!((summary.suspended, summary.completed), (1, 1));
}
