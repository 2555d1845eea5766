//! `keel reaper` (hidden): the process that kills a worker's commands when the worker
//! dies, however it dies. `keel worker` starts one and keeps the write end of its stdin;
//! each command registers its process group there (`+PGID`) before it runs, and the
//! worker withdraws a group once it is gone (`-PGID`). When stdin reaches end of file
//! the worker has exited or was killed: the reaper SIGKILLs every group it still knows,
//! waits until no live process is left in them, empties the payload directory and
//! exits.
//!
//! From before the worker registers until then the reaper holds the worker id's
//! commands lock ([`crate::worker_state`]), so a restarted worker waits for the old
//! instance's commands to die before it can be granted anything.
//!
//! A process group id can be reused once its group is gone. Groups are therefore
//! withdrawn by the worker as soon as it sees them gone, and pruned here every second
//! when they no longer exist; the remaining window is the pid space wrapping within a
//! second.

use crate::output::errln;
use crate::worker_state::{clear_payloads, lock, try_lock};
use clap::Args;
use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How often groups that disappeared by themselves are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(1);
/// After this long with SIGKILLed processes still alive, say so.
const SLOW_KILL: Duration = Duration::from_secs(5);

#[derive(Args, Debug)]
pub struct ReaperArgs {
    /// The lock to hold while the worker's commands may run.
    #[arg(long, value_name = "FILE")]
    pub lock: PathBuf,
    /// Directory of payload files to empty once the commands are dead.
    #[arg(long, value_name = "DIR")]
    pub payloads: PathBuf,
}

pub fn run(args: &ReaperArgs) -> ExitCode {
    // The worker's own end (stdin closing) is the only signal to stop: Ctrl-C in a
    // terminal or a TERM to the worker's group must not stop the reaper first.
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: setting a signal to SIG_IGN installs no handler code.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    let held = match try_lock(&args.lock) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => {
            tell("waiting");
            lock(&args.lock)
        }
        Err(e) => Err(e),
    };
    let _held = match held {
        Ok(file) => file,
        Err(e) => {
            errln!("keel reaper: {e}");
            return ExitCode::FAILURE;
        }
    };
    tell("locked");
    let groups = follow_stdin();
    kill_all(&groups);
    if let Err(e) = clear_payloads(&args.payloads) {
        errln!("keel reaper: {e}");
    }
    ExitCode::SUCCESS
}

/// A line to the worker; it may be gone already, which changes nothing here.
fn tell(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// The groups registered and not withdrawn when stdin ends.
fn follow_stdin() -> BTreeSet<i32> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut groups = BTreeSet::new();
    let mut pruned = Instant::now();
    loop {
        match rx.recv_timeout(PRUNE_EVERY) {
            Ok(line) => apply(&mut groups, &line),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return groups,
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            groups.retain(|&g| exists(g));
            pruned = Instant::now();
        }
    }
}

/// `+PGID` registers a group, `-PGID` withdraws it; anything else is ignored.
fn apply(groups: &mut BTreeSet<i32>, line: &str) {
    let (add, number) = match line.split_at_checked(1) {
        Some(("+", n)) => (true, n),
        Some(("-", n)) => (false, n),
        _ => return,
    };
    let Ok(pgid) = number.trim().parse::<i32>() else {
        return;
    };
    // SAFETY: getpgrp cannot fail and touches no memory.
    let own = unsafe { libc::getpgrp() };
    // 0 and 1 would address our own group and every process we may signal.
    if pgid <= 1 || pgid == own {
        return;
    }
    if add {
        groups.insert(pgid);
    } else {
        groups.remove(&pgid);
    }
}

/// SIGKILLs every group and waits until none has a live process (a zombie has exited:
/// it only waits to be collected, which in a container may never happen). Without
/// /proc, a group counts as alive while it exists, and the wait is bounded.
fn kill_all(groups: &BTreeSet<i32>) {
    let mut live = groups.clone();
    let start = Instant::now();
    let mut warned = false;
    while !live.is_empty() {
        for &g in &live {
            signal(g, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
        match live_groups() {
            Some(alive) => live.retain(|g| alive.contains(g)),
            None if start.elapsed() > SLOW_KILL => return,
            None => live.retain(|&g| exists(g)),
        }
        if !warned && !live.is_empty() && start.elapsed() > SLOW_KILL {
            errln!("keel reaper: process groups {live:?} are still alive after SIGKILL; waiting");
            warned = true;
        }
    }
}

/// Process groups with at least one process that is not a zombie, read from /proc;
/// `None` where /proc cannot be read.
fn live_groups() -> Option<BTreeSet<i32>> {
    let mut alive = BTreeSet::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // Gone since the listing, or not ours to read: either way not counted.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let mut fields = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace());
        let (state, pgrp) = match fields.as_mut() {
            Some(f) => (f.next(), f.nth(1)),
            None => continue,
        };
        if matches!(state, Some("Z" | "X" | "x")) {
            continue;
        }
        if let Some(pgrp) = pgrp.and_then(|p| p.parse().ok()) {
            alive.insert(pgrp);
        }
    }
    Some(alive)
}

fn exists(pgid: i32) -> bool {
    signal(pgid, 0)
}

/// Sends `sig` to process group `pgid` (0 only checks); false when it does not exist.
fn signal(pgid: i32, sig: libc::c_int) -> bool {
    // SAFETY: kill(2) takes plain integers; `apply` admits only groups above 1.
    unsafe { libc::kill(-pgid, sig) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_are_parsed_and_dangerous_groups_refused() {
        let mut groups = BTreeSet::new();
        for line in [
            "+100", "+200", "-100", "+0", "+1", "+-5", "+x", "100", "", "+",
        ] {
            apply(&mut groups, line);
        }
        // SAFETY: as in `apply`.
        apply(&mut groups, &format!("+{}", unsafe { libc::getpgrp() }));
        assert_eq!(groups.into_iter().collect::<Vec<_>>(), [200]);
    }

    #[test]
    fn live_groups_sees_this_process_group() {
        // SAFETY: as in `apply`.
        let own = unsafe { libc::getpgrp() };
        if let Some(alive) = live_groups() {
            assert!(alive.contains(&own));
        }
    }
}
