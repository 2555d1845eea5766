//! `keel worker`: serves tasks by running a shell command per task. The task's ids and
//! attempt are in environment variables and its payload on stdin; exit code 0 completes
//! the task with the command's stdout as output, anything else fails it with the end of
//! its stderr. Each command leads its own process group: when the attempt is revoked,
//! times out or is abandoned at shutdown, or when the command exits, every process left
//! in the group gets SIGTERM and, after `--kill-grace-ms`, SIGKILL.

use crate::connect::{init_tracing, runtime, terminated, ConnectArgs};
use crate::output::errln;
#[cfg(unix)]
use crate::process_group::{self, Group};
use clap::Args;
use keel_grpc::worker::{Outcome, Task, Worker, WorkerConfig};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// Most output kept from a command's stdout (the task's output) and stderr (its error).
const MAX_OUTPUT: usize = 1 << 20;
const MAX_ERROR: usize = 4096;

#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// A capability this worker offers; repeat for several.
    #[arg(long = "capability", value_name = "CAP")]
    pub capabilities: Vec<String>,
    /// A lane this worker serves, in preference order; repeat for several.
    #[arg(long = "lane", value_name = "LANE")]
    pub lanes: Vec<String>,
    /// Tasks run at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub concurrency: u32,
    /// Shell command run per task (with `sh -c`).
    #[arg(long, value_name = "CMD")]
    pub exec: String,
    /// This worker's name; defaults to host and process id.
    #[arg(long, value_name = "NAME")]
    pub id: Option<String>,
    /// On SIGINT/SIGTERM, how long running commands may take to finish before they are
    /// stopped.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub drain_timeout_ms: u64,
    /// Between SIGTERM and SIGKILL when a command's process group is stopped.
    #[arg(long, value_name = "MS", default_value_t = 3_000)]
    pub kill_grace_ms: u64,
}

pub fn run(args: &WorkerArgs) -> ExitCode {
    init_tracing();
    let client = match args.connect.options() {
        Ok(client) => client,
        Err(e) => {
            errln!("keel worker: {e}");
            return ExitCode::FAILURE;
        }
    };
    let id = args.id.clone().unwrap_or_else(default_id);
    let mut config = WorkerConfig::new(client, id, args.concurrency);
    config.capabilities = args.capabilities.clone();
    config.lanes = args.lanes.clone();
    config.drain_timeout = Duration::from_millis(args.drain_timeout_ms);
    let exec = Arc::new(args.exec.clone());
    let grace = Duration::from_millis(args.kill_grace_ms);
    let handler = move |task: Task| {
        let exec = exec.clone();
        async move { run_command(&exec, &task, grace).await }
    };
    // The runtime is gone after this statement, and with it every handler still running.
    let result = runtime().block_on(Worker::new(config).run(handler, terminated()));
    #[cfg(unix)]
    process_group::finish_all();
    match result {
        Ok(summary) => {
            errln!(
                "keel worker: {} completed, {} failed, {} revoked",
                summary.completed,
                summary.failed,
                summary.revoked
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            errln!("keel worker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn default_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}-{}", std::process::id())
}

/// Runs `exec` for one task. Dropping the returned future (a revoked lease) stops its
/// process group.
async fn run_command(exec: &str, task: &Task, grace: Duration) -> Outcome {
    let mut command = Command::new("sh");
    #[cfg(unix)]
    command.process_group(0);
    #[cfg(not(unix))]
    command.kill_on_drop(true);
    let child = command
        .arg("-c")
        .arg(exec)
        .env("KEEL_JOB_ID", task.job.0.to_string())
        .env("KEEL_TASK_ID", task.task.0.to_string())
        .env("KEEL_ATTEMPT", task.attempt.to_string())
        .env("KEEL_EPOCH", task.fence.epoch.to_string())
        .env(
            "KEEL_PAYLOAD",
            String::from_utf8_lossy(&task.payload).as_ref(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            return Outcome::Fail {
                error: format!("spawning sh: {e}"),
                permanent: false,
            }
        }
    };
    #[cfg(unix)]
    let group = child.id().and_then(|pid| Group::of(pid, grace));
    #[cfg(not(unix))]
    let _ = grace;
    let stdin = child.stdin.take();
    let payload = task.payload.clone();
    let feed = async move {
        if let Some(mut stdin) = stdin {
            // A command that does not read its stdin closes it early; that is fine.
            let _ = stdin.write_all(&payload).await;
        }
    };
    let stdout = read_bounded(child.stdout.take(), MAX_OUTPUT);
    let stderr = read_bounded(child.stderr.take(), 64 * 1024);
    // Whatever the command left running goes once it exits: a background job holding
    // its stdout would otherwise keep the task from ending.
    let exited = async {
        let status = child.wait().await;
        #[cfg(unix)]
        drop(group);
        status
    };
    let (_, stdout, stderr, status) = tokio::join!(feed, stdout, stderr, exited);
    match status {
        Ok(status) if status.success() => Outcome::Complete(stdout),
        Ok(status) => {
            let tail = &stderr[stderr.len().saturating_sub(MAX_ERROR)..];
            Outcome::Fail {
                error: format!("{status}: {}", String::from_utf8_lossy(tail).trim()),
                permanent: false,
            }
        }
        Err(e) => Outcome::Fail {
            error: format!("waiting for the command: {e}"),
            permanent: false,
        },
    }
}

/// Reads a pipe to its end, keeping at most `limit` bytes (the first ones).
async fn read_bounded(pipe: Option<impl AsyncReadExt + Unpin>, limit: usize) -> Vec<u8> {
    let Some(mut pipe) = pipe else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = limit.saturating_sub(kept.len()).min(n);
                kept.extend_from_slice(&buf[..room]);
            }
        }
    }
}
