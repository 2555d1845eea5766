//! Running one task's command: `sh -c CMD` with the task's ids in the environment, its
//! payload on stdin (for a consumer of streaming edges, their frames instead:
//! `worker_edges`) and in a file, its inputs and signal payload in files
//! (`worker_inputs`), its stdout kept as the task's output and the end of its stderr as
//! its error.

use crate::process_group::{self, Group};
use crate::worker_edges;
use crate::worker_inputs;
use crate::worker_state::PAYLOAD_PREFIX;
use crate::worker_stream::LineStream;
use keel_grpc::worker::{Outcome, Task};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// Bytes kept from the end of a command's stderr (the task's error).
const MAX_ERROR: usize = 4096;
/// Largest payload also passed in `KEEL_PAYLOAD`; the environment of a new process is
/// limited (128 KiB per variable on Linux, a few MiB in all).
const MAX_ENV_PAYLOAD: usize = 32 << 10;

/// How a worker runs its tasks' commands.
pub struct Exec {
    /// Run with `sh -c`.
    pub command: String,
    /// Where payload files are written.
    pub payloads: PathBuf,
    /// Between SIGTERM and SIGKILL when a command's process group is stopped.
    pub grace: Duration,
    /// Most bytes of stdout (the output) a command may write.
    pub max_output: usize,
    /// Append stderr's lines to the task's output stream as they come.
    pub stream_stderr: bool,
    /// Acknowledge a consumer's frames once written to its command's stdin.
    pub ack_stdin: bool,
}

/// Runs the command for one task. Dropping the returned future (a revoked lease) stops
/// its process group.
pub async fn run_command(settings: &Exec, task: &Task) -> Outcome {
    let (file, files) = match attempt_files(&settings.payloads, task) {
        Ok(both) => both,
        Err(failed) => return failed,
    };
    let exec = &settings.command;
    let mut command = shell_command(exec, task, &file, &files);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return launch_failed(exec, &e),
    };
    let group = child.id().and_then(|pid| Group::of(pid, settings.grace));
    let stdin = child.stdin.take();
    let exited_early = tokio::sync::Notify::new();
    let feed = async {
        let Some(mut stdin) = stdin else {
            return;
        };
        if task.streams().is_empty() {
            // A command that does not read its stdin closes it early (EPIPE); fine.
            let _ = stdin.write_all(&task.payload).await;
            return;
        }
        // A consumer's stdin carries its edges' frames; it stops with the command.
        tokio::select! {
            _ = worker_edges::feed(task, stdin, settings.ack_stdin) => {}
            _ = exited_early.notified() => {}
        }
    };
    let stdout = read_head(child.stdout.take(), settings.max_output);
    let mut lines = settings.stream_stderr.then(|| LineStream::new(task));
    let stderr = read_tail(child.stderr.take(), MAX_ERROR, lines.as_mut());
    // Whatever the command left running goes once it exits: a background job holding
    // its stdout would otherwise keep the task from ending.
    let exited = async {
        let status = child.wait().await;
        exited_early.notify_one();
        drop(group);
        status
    };
    let (_, stdout, stderr, status) = tokio::join!(feed, stdout, stderr, exited);
    drop(file);
    drop(files);
    verdict(status, stdout, stderr, settings.max_output)
}

/// The attempt's payload file and its input files under `payloads`, or the failure to
/// report when they cannot be written (permanent for an unsafe input key).
fn attempt_files(
    payloads: &Path,
    task: &Task,
) -> Result<(tempfile::NamedTempFile, worker_inputs::AttemptFiles), Outcome> {
    let file = payload_file(payloads, &task.payload).map_err(|e| Outcome::Fail {
        error: format!("writing the payload file in {}: {e}", payloads.display()),
        permanent: false,
    })?;
    let files = worker_inputs::write(payloads, task).map_err(|e| Outcome::Fail {
        permanent: matches!(e, worker_inputs::FilesError::UnsafeKey(_)),
        error: e.to_string(),
    })?;
    Ok((file, files))
}

/// `sh -c <exec>` in its own process group, with the task's identity and files in its
/// environment and all three standard streams piped.
fn shell_command(
    exec: &str,
    task: &Task,
    file: &tempfile::NamedTempFile,
    files: &worker_inputs::AttemptFiles,
) -> Command {
    let mut command = Command::new("sh");
    process_group::lead_own_group(&mut command);
    command
        .arg("-c")
        .arg(exec)
        .env("KEEL_JOB_ID", task.job.get().to_string())
        .env("KEEL_TASK_ID", task.task.get().to_string())
        .env("KEEL_ATTEMPT", task.attempt.to_string())
        .env("KEEL_EPOCH", task.fence.epoch.to_string())
        .env("KEEL_PAYLOAD_FILE", file.path())
        .env("KEEL_INPUTS_DIR", files.inputs_dir())
        .env_remove("KEEL_PAYLOAD")
        .env_remove("KEEL_SIGNAL_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(text) = env_payload(&task.payload) {
        command.env("KEEL_PAYLOAD", text);
    }
    if let Some(signal) = files.signal_file() {
        command.env("KEEL_SIGNAL_FILE", signal);
    }
    command
}

/// What the command's exit means for the task: its stdout as the output on success,
/// unless it wrote more than `max_output` bytes; else its exit status and stderr's tail.
fn verdict(
    status: std::io::Result<std::process::ExitStatus>,
    (stdout, written): (Vec<u8>, u64),
    (stderr, cut): (Vec<u8>, bool),
    max_output: usize,
) -> Outcome {
    match status {
        Ok(status) if status.success() && written > max_output as u64 => Outcome::Fail {
            error: format!(
                "the command wrote {written} bytes to stdout, more than --max-output-bytes ({max_output}); the output is never cut short: write large data elsewhere and print where"
            ),
            permanent: true,
        },
        Ok(status) if status.success() => Outcome::Complete(stdout),
        Ok(status) => {
            let text = String::from_utf8_lossy(&stderr);
            let ellipsis = if cut { "…" } else { "" };
            Outcome::Fail {
                error: format!("{status}: {ellipsis}{}", text.trim()),
                permanent: false,
            }
        }
        Err(e) => Outcome::Fail {
            error: format!("waiting for the command: {e}"),
            permanent: false,
        },
    }
}

/// A command that could not be started fails for good when retrying cannot help (no
/// `sh`, not executable, an environment too large), and is retried when the cause is
/// passing (out of processes, memory or descriptors; the worker's reaper gone).
fn launch_failed(exec: &str, e: &std::io::Error) -> Outcome {
    let passing = matches!(
        e.raw_os_error(),
        Some(libc::EAGAIN | libc::ENOMEM | libc::EMFILE | libc::ENFILE | libc::EINTR)
    );
    if e.raw_os_error() == Some(libc::EPIPE) {
        return Outcome::Fail {
            error: "the worker's reaper is gone; the command was not started".into(),
            permanent: false,
        };
    }
    let shown: String = exec.chars().take(80).collect();
    let more = if shown.len() < exec.len() { "…" } else { "" };
    Outcome::Fail {
        error: format!("launching sh -c {shown:?}{more}: {e}"),
        permanent: !passing,
    }
}

/// The payload as a private file (mode 0600) in `dir`, removed when dropped; a killed
/// worker's are removed by its reaper.
fn payload_file(dir: &Path, payload: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix(PAYLOAD_PREFIX)
        .tempfile_in(dir)?;
    file.write_all(payload)?;
    file.flush()?;
    Ok(file)
}

/// The payload as `KEEL_PAYLOAD` when it fits an environment variable: UTF-8 text with
/// no NUL of at most 32 KiB.
fn env_payload(payload: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(payload).ok()?;
    (text.len() <= MAX_ENV_PAYLOAD && !text.contains('\0')).then_some(text)
}

/// Reads a pipe to its end, keeping the first `limit` bytes; also returns how many
/// bytes were written in all, so a caller can tell the output was longer.
async fn read_head(pipe: Option<impl AsyncRead + Unpin>, limit: usize) -> (Vec<u8>, u64) {
    let Some(mut pipe) = pipe else {
        return (Vec::new(), 0);
    };
    let mut kept = Vec::new();
    let mut written = 0u64;
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return (kept, written),
            Ok(n) => {
                written = written.saturating_add(n as u64);
                let room = limit.saturating_sub(kept.len()).min(n);
                kept.extend_from_slice(&buf[..room]);
            }
        }
    }
}

/// Reads a pipe to its end, keeping the last `limit` bytes (starting on a character
/// boundary) and whether anything before them was dropped: the end of stderr is what
/// says why a command failed.
/// With `lines`, every byte read also goes to the task's output stream.
async fn read_tail(
    pipe: Option<impl AsyncRead + Unpin>,
    limit: usize,
    mut lines: Option<&mut LineStream<'_>>,
) -> (Vec<u8>, bool) {
    let Some(mut pipe) = pipe else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut cut = false;
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(lines) = lines.as_mut() {
                    lines.feed(&buf[..n]).await;
                }
                kept.extend_from_slice(&buf[..n]);
                // Trimmed only past twice the limit, so the copy is amortised.
                if kept.len() > 2 * limit {
                    kept.drain(..kept.len() - limit);
                    cut = true;
                }
            }
        }
    }
    if let Some(lines) = lines {
        lines.finish().await;
    }
    if kept.len() > limit {
        kept.drain(..kept.len() - limit);
        cut = true;
    }
    // Skip the rest of a character the cut went through.
    let partial = kept
        .iter()
        .take(3)
        .take_while(|b| *b & 0xC0 == 0x80)
        .count();
    if cut {
        kept.drain(..partial);
    }
    (kept, cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_tail_keeps_the_last_bytes_on_a_character_boundary() {
        let mut text = "early noise\n".repeat(10_000).into_bytes();
        text.extend_from_slice("é".repeat(10).as_bytes());
        text.extend_from_slice(b"\nthe real error\n");
        let (tail, cut) = read_tail(Some(&text[..]), 21, None).await;
        assert!(cut);
        assert_eq!(String::from_utf8(tail).unwrap(), "éé\nthe real error\n");
        let (tail, cut) = read_tail(Some(&b"short"[..]), 21, None).await;
        assert_eq!((&tail[..], cut), (&b"short"[..], false));
    }

    #[tokio::test]
    async fn the_head_keeps_the_first_bytes_and_counts_them_all() {
        let data = vec![7u8; 100_000];
        assert_eq!(
            read_head(Some(&data[..]), 10).await,
            (vec![7u8; 10], 100_000)
        );
    }

    #[test]
    fn only_small_text_payloads_go_in_the_environment() {
        assert_eq!(env_payload(b"echo hi"), Some("echo hi"));
        assert_eq!(env_payload(b"a\0b"), None);
        assert_eq!(env_payload(&[0xff, 0xfe]), None);
        assert_eq!(env_payload(&vec![b'x'; MAX_ENV_PAYLOAD + 1]), None);
        assert!(env_payload(&vec![b'x'; MAX_ENV_PAYLOAD]).is_some());
    }

    #[test]
    fn launch_failures_are_permanent_unless_passing() {
        let missing = std::io::Error::from_raw_os_error(libc::ENOENT);
        let Outcome::Fail { error, permanent } = launch_failed("run it", &missing) else {
            panic!("not a failure");
        };
        assert!(permanent);
        assert!(error.starts_with("launching sh -c \"run it\": "), "{error}");
        let busy = std::io::Error::from_raw_os_error(libc::EAGAIN);
        assert!(matches!(
            launch_failed("x", &busy),
            Outcome::Fail {
                permanent: false,
                ..
            }
        ));
        let reaper = std::io::Error::from_raw_os_error(libc::EPIPE);
        assert!(matches!(
            launch_failed("x", &reaper),
            Outcome::Fail {
                permanent: false,
                ..
            }
        ));
    }
}
