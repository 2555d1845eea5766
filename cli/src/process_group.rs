//! Stopping everything a task's command started. Each command leads its own process
//! group, so a shell's background jobs and grandchildren can be signalled with it:
//! killing only the shell would leave them running after their attempt was revoked,
//! timed out or abandoned at shutdown, holding files, ports and CPU that the next
//! attempt needs.
//!
//! A group gets SIGTERM at once and SIGKILL after a grace period. The SIGKILL normally
//! comes from a runtime task; groups still in their grace period when the worker exits
//! are finished by [`finish_all`], which the worker calls after its runtime has stopped.
//!
//! When the worker itself dies, the group's leader gets SIGKILL from the kernel
//! (`PR_SET_PDEATHSIG`) and the rest of the group from the reaper, which each command
//! registers with before it runs ([`lead_own_group`]); a group that is gone or has been
//! SIGKILLed is withdrawn from the reaper.

use crate::worker_reaper::{registration_fd, withdraw};
use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Groups signalled with SIGTERM and when each is due its SIGKILL.
static DYING: Mutex<BTreeMap<i32, Instant>> = Mutex::new(BTreeMap::new());

/// How long [`finish_all`] waits for SIGKILLed groups to disappear. Bounded because
/// an exited process stays a group member until reaped, and orphans are reaped by init,
/// which in a container may never do it.
const REAP_WAIT: Duration = Duration::from_secs(1);

/// The process group led by one command. Dropping it stops every process in the group,
/// including the leader if it still runs.
pub struct Group {
    pgid: i32,
    grace: Duration,
}

impl Group {
    /// The group of a child spawned with `process_group(0)`, whose pid is its group id.
    pub fn of(pid: u32, grace: Duration) -> Option<Group> {
        let pgid = i32::try_from(pid).ok().filter(|p| *p > 1)?;
        Some(Group { pgid, grace })
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !signal(self.pgid, libc::SIGTERM) {
            withdraw(self.pgid);
            return;
        }
        let pgid = self.pgid;
        let due = Instant::now() + self.grace;
        lock().insert(pgid, due);
        // Without a runtime (it is shutting down) the SIGKILL is left to `finish_all`.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                tokio::time::sleep_until(due.into()).await;
                if lock().remove(&pgid).is_some() {
                    signal(pgid, libc::SIGKILL);
                    withdraw(pgid);
                }
            });
        }
    }
}

/// Waits out the grace periods still running, then SIGKILLs what is left of those
/// groups. Returns early once every group is gone.
pub fn finish_all() {
    let dying = std::mem::take(&mut *lock());
    let Some(last) = dying.values().max().copied() else {
        return;
    };
    let live = |dying: &BTreeMap<i32, Instant>| dying.keys().any(|&g| signal(g, 0));
    while live(&dying) && Instant::now() < last {
        std::thread::sleep(Duration::from_millis(20));
    }
    for &pgid in dying.keys() {
        signal(pgid, libc::SIGKILL);
        withdraw(pgid);
    }
    let reaped_by = Instant::now() + REAP_WAIT;
    while live(&dying) && Instant::now() < reaped_by {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Makes `command` lead its own process group, die with the worker and register that
/// group with the reaper before it runs, so that no moment exists in which the worker
/// could die leaving an untracked group behind.
///
/// The kernel sends the parent-death signal when the thread that spawned the child
/// exits, not the process: commands must be spawned from a thread that lives as long
/// as the worker (the worker runs a current-thread runtime on its main thread).
pub fn lead_own_group(command: &mut tokio::process::Command) {
    command.process_group(0);
    // Pids fit in pid_t; the cast only restores the type std widened them from.
    let parent = std::process::id() as libc::pid_t;
    let fd = registration_fd();
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it uses prctl, getppid, getpid, signal and
    // write on stack memory, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            #[cfg(target_os = "linux")]
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The worker may have died before the signal was armed; then none will come,
            // so the command must not run at all.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            if fd >= 0 {
                register(fd)?;
            }
            Ok(())
        });
    }
}

/// Writes `+PID\n` (this process leads the group of that id) to the reaper's pipe, in
/// one write, which a pipe keeps whole. Runs between fork and exec.
///
/// # Safety
/// `fd` must be the reaper pipe's descriptor, still open in this process.
unsafe fn register(fd: libc::c_int) -> io::Result<()> {
    let mut line = [0u8; 16];
    let mut digits = [0u8; 12];
    let mut pid = libc::getpid().unsigned_abs();
    let mut n = 0;
    loop {
        digits[n] = b'0' + (pid % 10) as u8;
        n += 1;
        pid /= 10;
        if pid == 0 {
            break;
        }
    }
    line[0] = b'+';
    for i in 0..n {
        line[1 + i] = digits[n - 1 - i];
    }
    line[1 + n] = b'\n';
    let len = n + 2;
    // A dead reaper must fail the spawn, not kill this child with SIGPIPE.
    let old = libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    let written = libc::write(fd, line.as_ptr().cast(), len);
    let error = io::Error::last_os_error();
    libc::signal(libc::SIGPIPE, old);
    match written {
        w if w == len as isize => Ok(()),
        w if w < 0 => Err(error),
        _ => Err(io::Error::from_raw_os_error(libc::EPIPE)),
    }
}

/// Sends `sig` to every process of group `pgid` (0 only checks that one exists);
/// false when the group no longer exists.
fn signal(pgid: i32, sig: libc::c_int) -> bool {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a negative
    // pid addresses the process group, and `Group::of` never yields 0 or 1.
    unsafe { libc::kill(-pgid, sig) == 0 }
}

fn lock() -> std::sync::MutexGuard<'static, BTreeMap<i32, Instant>> {
    DYING.lock().unwrap_or_else(|p| p.into_inner())
}
