//! Real processes: `keel serve` and three `keel worker`s run a 50-task job while a
//! worker holding leases is SIGKILLed and the coordinator is SIGKILLed and restarted on
//! the same log. The job must still succeed, the killed worker's tasks must run again
//! as new attempts, and nothing acknowledged before the crash may be lost or redone.

mod process;

use process::{submit, until, worker, Serve};
use std::collections::BTreeMap;
use std::path::Path;

const TASKS: usize = 50;
/// Tasks that finish at once; the rest wait for the `go` file, so the job is
/// guaranteed to be running when the processes are killed.
const QUICK: usize = 10;

/// Each task appends its attempt number to `runs/<task id>` when it starts.
fn job_file(dir: &Path) -> std::path::PathBuf {
    let runs = dir.join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let go = dir.join("go");
    let mut toml = String::from("[job]\nname = \"fifty\"\n\n");
    for i in 0..TASKS {
        let record = format!("echo $KEEL_ATTEMPT >> {}/$KEEL_TASK_ID", runs.display());
        let body = if i < QUICK {
            format!("{record}; sleep 0.1")
        } else {
            format!(
                "{record}; while [ ! -f {} ]; do sleep 0.05; done",
                go.display()
            )
        };
        toml.push_str(&format!("\n[[task]]\nid = \"t{i}\"\ncommand = '{body}'\n"));
    }
    let path = dir.join("job.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn runs_of(dir: &Path, task: u64) -> usize {
    std::fs::read_to_string(dir.join("runs").join(task.to_string()))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

async fn survives_worker_and_coordinator_crashes(valkey: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let job_path = job_file(dir.path());
    let mut serve = Serve::start(&dir.path().join("data"), valkey);
    let url = serve.url();
    let mut w1 = worker(&url, "w1", 2);
    let _w2 = worker(&url, "w2", 2);
    let _w3 = worker(&url, "w3", 2);
    let job = submit(&url, &job_path);

    // w1 holds leases on waiting tasks; kill it without a goodbye.
    let w1_waiting = |t: &&keel_grpc::proto::TaskView| {
        let waits = t.key[1..].parse::<usize>().is_ok_and(|i| i >= QUICK);
        waits && t.state == "running" && t.detail.starts_with("w1,")
    };
    let view = until(&url, job, "w1 holding a lease", |v| {
        v.tasks.iter().any(|t| w1_waiting(&t))
    })
    .await;
    let held: Vec<(u64, u32)> = view
        .tasks
        .iter()
        .filter(w1_waiting)
        .map(|t| (t.id, t.attempt))
        .collect();
    w1.kill();

    // w1 is declared lost: its attempts end and its tasks go back to the queue.
    let before = until(&url, job, "w1's attempts ended", |v| {
        let some_done = v.tasks.iter().any(|t| t.state == "succeeded");
        some_done
            && held.iter().all(|(id, attempt)| {
                let task = v.tasks.iter().find(|t| t.id == *id);
                let ended = task.and_then(|t| t.attempts.iter().find(|a| a.attempt == *attempt));
                ended.is_some_and(|a| a.ended_at_ms.is_some())
            })
    })
    .await;
    let acknowledged: BTreeMap<u64, u32> = before
        .tasks
        .iter()
        .filter(|t| t.state == "succeeded")
        .map(|t| (t.id, t.attempt))
        .collect();
    assert!(
        before.status.as_ref().unwrap().outcome.is_empty(),
        "the job ended early"
    );

    serve.kill_and_restart();
    // Everything acknowledged before the crash is still there after recovery.
    let after = process::describe(&url, job).await;
    for (id, attempt) in &acknowledged {
        let t = after.tasks.iter().find(|t| t.id == *id).unwrap();
        assert_eq!(
            (t.state.as_str(), t.attempt),
            ("succeeded", *attempt),
            "{t:?}"
        );
    }
    std::fs::write(dir.path().join("go"), "").unwrap();

    let done = until(&url, job, "the job finishing", |v| {
        v.status.as_ref().is_some_and(|s| !s.outcome.is_empty())
    })
    .await;
    assert_eq!(done.status.as_ref().unwrap().outcome, "succeeded");
    assert_eq!(done.tasks.len(), TASKS);
    for (id, attempt) in &held {
        let t = done.tasks.iter().find(|t| t.id == *id).unwrap();
        assert!(t.attempt > *attempt, "w1's task was not run again: {t:?}");
        let first = t.attempts.iter().find(|a| a.attempt == *attempt).unwrap();
        assert_eq!(first.worker, "w1");
        let last = t.attempts.last().unwrap();
        assert_ne!(last.worker, "w1");
        assert_eq!(last.end, "succeeded");
    }
    for id in acknowledged.keys() {
        assert_eq!(
            runs_of(dir.path(), *id),
            1,
            "acknowledged task {id} ran again"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_survives_crashes_on_the_embedded_log() {
    survives_worker_and_coordinator_crashes(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_survives_crashes_on_valkey() {
    let valkey = keel_valkey::server::ValkeyServer::start();
    survives_worker_and_coordinator_crashes(Some(valkey.url())).await;
}
