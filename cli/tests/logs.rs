//! `keel logs` against a real coordinator process: an SDK handler emits frames, `keel
//! logs` prints those stored so far, `--follow` prints the rest as they come and
//! exits once the task has ended, and `--attempt` chooses one attempt's frames; a
//! shell task's stderr is followed with `keel worker --stream-stderr`.

mod process;

use keel_grpc::client::ClientOptions;
use keel_grpc::worker::{Outcome, Task, Worker, WorkerConfig};
use process::{job_file, run_keel, submit, worker_with, Serve};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

#[test]
fn logs_prints_the_stream_and_follows_it_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The handler emits two lines, says so, waits to be let go, emits a third.
    let (emitted_tx, mut emitted) = mpsc::unbounded_channel::<()>();
    let (go_tx, go) = oneshot::channel::<()>();
    let go = Arc::new(Mutex::new(Some(go)));
    let handler = move |task: Task| {
        let (emitted_tx, go) = (emitted_tx.clone(), go.clone());
        async move {
            let lines = |t: &[&str]| t.iter().map(|l| l.as_bytes().to_vec()).collect();
            task.emit(lines(&["line 1\n", "line 2\n"])).await.unwrap();
            let _ = emitted_tx.send(());
            let go = go.lock().unwrap().take();
            if let Some(go) = go {
                let _ = go.await;
            }
            task.emit(lines(&["line 3\n"])).await.unwrap();
            Outcome::Complete(Vec::new())
        }
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let config = WorkerConfig::new(ClientOptions::new(url.clone()), "sdk", 1);
    let worker = runtime.spawn(Worker::new(config).run(handler, async {
        let _ = stopped.await;
    }));
    let spec = job_file(
        dir.path(),
        "tail",
        "[job]\nname = \"tail\"\n\n[[task]]\nid = \"tail\"\ndata = \"x\"\n",
    );
    let job = submit(&url, &spec).to_string();
    runtime.block_on(emitted.recv()).unwrap();

    let c = ["--coordinator", url.as_str()];
    let (code, out, err) = run_keel(&[&["logs", &job, "tail"][..], &c].concat());
    assert_eq!((code, out.as_str()), (0, "line 1\nline 2\n"), "{err}");

    let follow = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args([&["logs", &job, "t1", "--follow"][..], &c].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Following the winning attempt prints nothing until it has won, then all of it.
    let winning = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args([&["logs", &job, "tail", "-f", "--winning"][..], &c].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    go_tx.send(()).unwrap();
    let won = winning.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&won.stdout),
        "line 1\nline 2\nline 3\n",
        "{}",
        String::from_utf8_lossy(&won.stderr)
    );
    let done = follow.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(out, "line 1\nline 2\nline 3\n");

    let (code, out, _) = run_keel(&[&["logs", &job, "tail", "--attempt", "2"][..], &c].concat());
    assert_eq!((code, out.as_str()), (0, ""));
    let (code, _, err) = run_keel(&[&["logs", &job, "nope"][..], &c].concat());
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("has no task with key \"nope\""), "{err}");
    let _ = stop.send(());
    runtime.block_on(worker).unwrap().unwrap();
}

#[test]
fn a_shell_task_stderr_is_followed_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let _w = worker_with(&url, "w1", &["--stream-stderr"]);
    let spec = job_file(
        dir.path(),
        "shell",
        "[job]\nname = \"shell\"\n\n[[task]]\nid = \"build\"\n\
         command = \"echo one >&2; echo two >&2; sleep 1; printf three >&2; echo done\"\n",
    );
    let job = submit(&url, &spec).to_string();
    let c = ["--coordinator", url.as_str()];
    let (code, out, err) = run_keel(&[&["logs", &job, "build", "-f"][..], &c].concat());
    assert_eq!((code, out.as_str()), (0, "one\ntwo\nthree"), "{err}");
    let (code, out, err) = run_keel(&[&["output", &job, "build"][..], &c].concat());
    assert_eq!((code, out.as_str()), (0, "done\n"), "{err}");
}

/// Splits followed output into runs of `line 1`, `line 2`, ...: one per attempt whose
/// lines were printed; `None` if a line is missing or out of order within a run.
fn runs(out: &str) -> Option<Vec<u32>> {
    let mut runs: Vec<u32> = Vec::new();
    for line in out.lines() {
        let n: u32 = line.strip_prefix("line ")?.parse().ok()?;
        match runs.last_mut() {
            Some(last) if n == *last + 1 => *last = n,
            _ if n == 1 => runs.push(1),
            _ => return None,
        }
    }
    Some(runs)
}

#[test]
fn follow_goes_on_through_a_coordinator_killed_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let _w = worker_with(&url, "w1", &["--stream-stderr"]);
    let spec = job_file(
        dir.path(),
        "slow",
        "[job]\nname = \"slow\"\n\n[[task]]\nid = \"build\"\n\
         command = \"for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i >&2; sleep 0.3; done\"\n",
    );
    let job = submit(&url, &spec).to_string();
    let mut follow = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(["logs", &job, "build", "-f", "--coordinator", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let bound = std::time::Duration::from_secs(60);
    let mut out = String::new();
    for _ in 0..2 {
        out += &(lines.recv_timeout(bound).expect("a followed line") + "\n");
    }
    // SIGKILL mid-task: the follower's tail ends, and it opens one again from its
    // cursor once the restarted coordinator leads.
    serve.kill_and_restart();
    while let Ok(line) = lines.recv_timeout(bound) {
        out += &(line + "\n");
    }
    let done = follow.wait_with_output().unwrap();
    reader.join().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    // Every attempt's lines once each, in order; the last attempt's all ten.
    let runs =
        runs(&out).unwrap_or_else(|| panic!("a line lost, repeated or out of order:\n{out}"));
    assert_eq!(runs.last(), Some(&10), "{out}");
}
