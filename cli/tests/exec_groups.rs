//! Real processes: a `keel worker --exec` task whose shell starts a long-running
//! grandchild. Cancelling the job, or stopping the worker, must stop that grandchild
//! too, not only the shell the worker spawned.

#![cfg(target_os = "linux")]

mod process;

use keel_grpc::client::ClientOptions;
use keel_grpc::proto::CancelJobRequest;
use process::{submit, until, worker_with, Proc, Serve, BOUND};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a signalled grandchild may take to disappear (SIGTERM, then SIGKILL after
/// the worker's grace period).
const GONE_WITHIN: Duration = Duration::from_secs(20);

/// A coordinator and one worker running a one-task job whose task backgrounds a
/// `sleep`, records its pid, then runs `rest`.
struct Running {
    serve: Serve,
    worker: Proc,
    job: u64,
    /// The backgrounded `sleep`, a grandchild of the worker.
    pid: u32,
    _reap: Reap,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start(rest: &str, worker_options: &[&str]) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild");
        let body = format!("sleep 1000 & echo $! > {}{rest}", pid_file.display());
        let toml =
            format!("[job]\nname = \"orphan\"\n\n[[task]]\nid = \"t\"\ncommand = '{body}'\n");
        let job_path = dir.path().join("job.toml");
        std::fs::write(&job_path, toml).unwrap();
        let serve = Serve::start(&dir.path().join("data"), None);
        let worker = worker_with(&serve.url(), "w1", worker_options);
        let job = submit(&serve.url(), &job_path);
        let pid = read_pid(&pid_file);
        Running {
            serve,
            worker,
            job,
            pid,
            _reap: Reap(pid),
            _dir: dir,
        }
    }
}

fn read_pid(file: &Path) -> u32 {
    let start = Instant::now();
    loop {
        if let Some(pid) = std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            start.elapsed() < BOUND,
            "the task never started its grandchild"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A pid names a live process when /proc has it and it is not a zombie (a zombie has
/// exited and only waits for its parent, possibly a non-reaping init, to collect it).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        !state.starts_with('Z') && !state.starts_with('X')
    })
}

fn assert_gone(pid: u32, after: &str) {
    let start = Instant::now();
    while alive(pid) {
        assert!(
            start.elapsed() < GONE_WITHIN,
            "grandchild {pid} still runs {GONE_WITHIN:?} after {after}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills `pid` if a failed assertion left it running, so a failing test leaves no
/// sleeper behind either.
struct Reap(u32);
impl Drop for Reap {
    fn drop(&mut self) {
        if alive(self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_job_stops_the_commands_grandchildren() {
    let run = Running::start("; wait", &[]);
    assert!(alive(run.pid), "the grandchild is not running");
    let url = run.serve.url();
    let mut jobs = ClientOptions::new(url.as_str()).jobs().await.unwrap();
    jobs.cancel_job(CancelJobRequest { job: run.job })
        .await
        .unwrap();
    until(&url, run.job, "the job ending", |v| {
        v.status.as_ref().is_some_and(|s| s.outcome == "cancelled")
    })
    .await;
    assert_gone(run.pid, "the job was cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_past_its_drain_timeout_stops_the_commands_grandchildren() {
    let options = ["--drain-timeout-ms", "1000", "--kill-grace-ms", "500"];
    let mut run = Running::start("; wait", &options);
    assert!(alive(run.pid), "the grandchild is not running");
    run.worker.signal("TERM");
    let status = run.worker.wait_exit(BOUND);
    assert!(status.success(), "keel worker exited with {status}");
    assert_gone(run.pid, "the worker exited");
}

/// The background sleep keeps the command's stdout open: left alone, it would hold the
/// task until it ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_exits_takes_its_background_jobs_with_it() {
    let run = Running::start("", &["--kill-grace-ms", "500"]);
    let url = run.serve.url();
    let done = until(&url, run.job, "the job ending", |v| {
        v.status.as_ref().is_some_and(|s| !s.outcome.is_empty())
    })
    .await;
    assert_eq!(done.status.unwrap().outcome, "succeeded");
    assert_gone(run.pid, "its command exited");
}
