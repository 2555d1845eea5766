//! The worker's end of its reaper ([`crate::reaper`]): starting it, waiting until it
//! holds the commands lock, the pipe commands register their process groups on, and
//! noticing when the reaper is gone.

use crate::worker_state::WorkerFiles;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The write end of the reaper's stdin; `None` once the worker has finished.
static PIPE: Mutex<Option<ChildStdin>> = Mutex::new(None);
/// Its descriptor, for commands to register on between fork and exec (where taking a
/// lock is not allowed); -1 when there is none.
static FD: AtomicI32 = AtomicI32::new(-1);

/// How long a finishing worker waits for its reaper to confirm the commands are dead.
const FINISH_WAIT: Duration = Duration::from_secs(10);

pub struct Reaper {
    pid: u32,
    exited: oneshot::Receiver<std::io::Result<ExitStatus>>,
}

impl Reaper {
    /// Starts the reaper and returns once it holds the commands lock, which may mean
    /// waiting for the reaper of a previous instance of `worker_id` to finish killing
    /// that instance's commands.
    pub fn start(files: &WorkerFiles, worker_id: &str) -> Result<Reaper, String> {
        let exe = std::env::current_exe().map_err(|e| format!("finding keel itself: {e}"))?;
        let mut child = Command::new(&exe)
            .arg("reaper")
            .arg("--lock")
            .arg(&files.commands_lock)
            .arg("--payloads")
            .arg(&files.payloads)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Out of the worker's group, so a terminal's Ctrl-C reaches only the worker.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting the reaper ({}): {e}", exe.display()))?;
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        let lock = files.commands_lock.display();
        let mut lines = stdout.map(|s| BufReader::new(s).lines());
        loop {
            match lines.as_mut().and_then(|l| l.next()).and_then(Result::ok) {
                Some(line) if line == "locked" => break,
                Some(line) if line == "waiting" => tracing::warn!(
                    worker = worker_id,
                    lock = %lock,
                    "waiting for the commands of this worker's previous instance to die \
                     (its reaper holds the lock) before registering"
                ),
                Some(_) => {}
                None => {
                    let status = child
                        .wait()
                        .map_or_else(|e| e.to_string(), |s| s.to_string());
                    return Err(format!("the reaper exited before taking {lock}: {status}"));
                }
            }
        }
        let stdin = stdin.ok_or("the reaper has no stdin")?;
        FD.store(stdin.as_raw_fd(), Ordering::SeqCst);
        *pipe() = Some(stdin);
        let pid = child.id();
        let (tx, exited) = oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        Ok(Reaper { pid, exited })
    }

    /// Resolves if the reaper exits while the worker runs, with what to report: the
    /// worker must then stop, since its commands could outlive it.
    pub async fn lost(&mut self) -> String {
        let status = match (&mut self.exited).await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "unknown status".to_string(),
        };
        format!(
            "the reaper (pid {}) exited ({status}); stopping, since without it commands \
             could outlive this worker",
            self.pid
        )
    }

    /// Closes the pipe, so the reaper kills what is left of the commands and exits, and
    /// waits (bounded) for it: when the worker exits, its commands are gone and the
    /// commands lock is free. False if the reaper had not exited in time.
    pub fn finish(mut self) -> bool {
        FD.store(-1, Ordering::SeqCst);
        drop(pipe().take());
        let start = Instant::now();
        while start.elapsed() < FINISH_WAIT {
            match self.exited.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => return true,
            }
        }
        tracing::warn!(pid = self.pid, "the reaper has not exited; leaving it");
        false
    }
}

/// The descriptor a command writes its `+PGID` registration to; -1 when none.
pub fn registration_fd() -> RawFd {
    FD.load(Ordering::SeqCst)
}

/// Tells the reaper that process group `pgid` is gone or has been SIGKILLed, so it is
/// not signalled again once its id may belong to someone else.
pub fn withdraw(pgid: i32) {
    if let Some(pipe) = pipe().as_mut() {
        // A reaper that is gone is noticed by `Reaper::lost`.
        let _ = pipe.write_all(format!("-{pgid}\n").as_bytes());
    }
}

fn pipe() -> std::sync::MutexGuard<'static, Option<ChildStdin>> {
    PIPE.lock().unwrap_or_else(|p| p.into_inner())
}
