//! Stopping everything a task's command started. Each command leads its own process
//! group, so a shell's background jobs and grandchildren can be signalled with it:
//! killing only the shell would leave them running after their attempt was revoked,
//! timed out or abandoned at shutdown, holding files, ports and CPU that the next
//! attempt needs.
//!
//! A group gets SIGTERM at once and SIGKILL after a grace period. The SIGKILL normally
//! comes from a runtime task; groups still in their grace period when the worker exits
//! are finished by [`finish_all`], which the worker calls after its runtime has stopped.

use std::collections::BTreeMap;
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
    }
    let reaped_by = Instant::now() + REAP_WAIT;
    while live(&dying) && Instant::now() < reaped_by {
        std::thread::sleep(Duration::from_millis(20));
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
