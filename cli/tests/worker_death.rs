//! Real processes: a `keel worker --exec` SIGKILLed while a task runs. Its command and
//! everything in the command's process group die with it, and a worker restarted at
//! once with the same id is granted the task again only after the old attempt is dead:
//! no two attempts of one task overlap.

#![cfg(target_os = "linux")]

mod process;

use process::{keel, submit, until, worker_in, Proc, Serve, BOUND};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Writes a start line, a heartbeat every 100 ms for about 5 s, then an end line, each
/// stamped with the shell's pid (one per attempt) and the time in nanoseconds. The
/// writer is a background subshell, a grandchild of the worker: the kernel's
/// parent-death signal reaches only the shell, the rest is the reaper's to kill.
const HEARTBEATS: &str = r#"b() { echo "$1 $$ $(date +%s%N)" >> BEATS; }
(
b start
i=0
while [ $i -lt 50 ]; do b beat; sleep 0.1; i=$((i+1)); done
b end
) &
wait
"#;

fn job_file(dir: &Path, name: &str, script: &str) -> std::path::PathBuf {
    let toml =
        format!("[job]\nname = \"{name}\"\n\n[[task]]\nid = \"t\"\ncommand = '''\n{script}'''\n");
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    path
}

fn wait_for(what: &str, bound: Duration, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < bound,
            "{what} did not happen within {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A pid names a live process when /proc has it and it is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        !state.starts_with('Z') && !state.starts_with('X')
    })
}

/// Each attempt's first and last timestamp (ns), by the pid of its shell.
fn attempts(beats: &Path) -> BTreeMap<u32, (u128, u128)> {
    let text = std::fs::read_to_string(beats).unwrap_or_default();
    let mut spans = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, pid, at] = fields[..] else { continue };
        let (Ok(pid), Ok(at)) = (pid.parse::<u32>(), at.parse::<u128>()) else {
            continue;
        };
        let span = spans.entry(pid).or_insert((at, at));
        span.0 = span.0.min(at);
        span.1 = span.1.max(at);
    }
    spans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_restarted_at_once_after_sigkill_never_overlaps_its_old_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let beats = dir.path().join("beats");
    let script = HEARTBEATS.replace("BEATS", &beats.display().to_string());
    let job_path = job_file(dir.path(), "beats", &script);
    let state = dir.path().join("state");
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let mut worker = worker_in(&state, &url, "w1", &[]);
    let job = submit(&url, &job_path);
    wait_for("the first heartbeat", BOUND, || {
        std::fs::read_to_string(&beats).is_ok_and(|t| t.contains("beat "))
    });
    worker.kill();
    let _restarted = worker_in(&state, &url, "w1", &[]);
    let done = until(&url, job, "the job ending", |v| {
        v.status.as_ref().is_some_and(|s| !s.outcome.is_empty())
    })
    .await;
    assert_eq!(done.status.unwrap().outcome, "succeeded");
    let mut spans: Vec<(u128, u128)> = attempts(&beats).into_values().collect();
    spans.sort();
    assert!(spans.len() >= 2, "the task ran once only: {spans:?}");
    for pair in spans.windows(2) {
        let ((_, first_end), (second_start, _)) = (pair[0], pair[1]);
        assert!(
            first_end < second_start,
            "two attempts overlapped by {} ms: {spans:?}",
            (first_end - second_start) / 1_000_000
        );
        eprintln!(
            "{} ms between the old attempt's last write and the new one's first",
            (second_start - first_end) / 1_000_000
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_worker_takes_its_commands_whole_group_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = format!(
        "sleep 1000 &\necho $$ $! > {0}.tmp && mv {0}.tmp {0}\nwait\n",
        pids.display()
    );
    let job_path = job_file(dir.path(), "orphan", &script);
    let serve = Serve::start(&dir.path().join("data"), None);
    let mut worker = worker_in(&dir.path().join("state"), &serve.url(), "w1", &[]);
    submit(&serve.url(), &job_path);
    wait_for("the task starting", BOUND, || pids.exists());
    let text = std::fs::read_to_string(&pids).unwrap();
    let group: Vec<u32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(group.iter().all(|&p| alive(p)), "{group:?} not running");
    let _reap = Reap(group.clone());
    worker.kill();
    let killed = Instant::now();
    wait_for("the command's group dying", Duration::from_secs(1), || {
        !group.iter().any(|&p| alive(p))
    });
    eprintln!("group gone {:?} after SIGKILL", killed.elapsed());
}

/// The commands lock held by someone else (a previous instance's reaper still killing
/// its commands) keeps a worker from registering, so it is granted nothing until the
/// lock is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_registers_only_once_the_commands_lock_is_free() {
    use std::os::unix::io::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let held = std::fs::File::create(state.join("w1.commands.lock")).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
    let ran = dir.path().join("ran");
    let job_path = job_file(dir.path(), "gated", &format!("touch {}\n", ran.display()));
    let serve = Serve::start(&dir.path().join("data"), None);
    let url = serve.url();
    let _worker = worker_in(&state, &url, "w1", &[]);
    let job = submit(&url, &job_path);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !ran.exists(),
        "the task ran while the commands lock was held"
    );
    drop(held);
    let done = until(&url, job, "the job ending", |v| {
        v.status.as_ref().is_some_and(|s| !s.outcome.is_empty())
    })
    .await;
    assert_eq!(done.status.unwrap().outcome, "succeeded");
    assert!(ran.exists());
}

#[test]
fn a_second_live_worker_with_the_same_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // No coordinator answers here: the first worker keeps retrying, holding its id.
    let url = format!("http://127.0.0.1:{}", process::free_port());
    let first = worker_in(&state, &url, "twin", &[]);
    let pid = first.id().unwrap();
    // The reaper is started once the worker holds its id's lock.
    wait_for("the first worker's reaper", BOUND, || {
        !children(pid).is_empty()
    });
    let mut child = keel()
        .args([
            "worker",
            "--coordinator",
            &url,
            "--id",
            "twin",
            "--exec",
            "true",
        ])
        .arg("--state-dir")
        .arg(&state)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let status = Proc::of(child).wait_exit(BOUND);
    assert!(!status.success());
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
    assert!(
        text.contains("another keel worker with id \"twin\" is running on this host"),
        "{text}"
    );
}

/// The pids whose parent is `parent`, read from /proc.
fn children(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1));
        if ppid == Some(parent.to_string().as_str()) {
            found.push(pid);
        }
    }
    found
}

/// Without its reaper a worker's commands could outlive it, so a worker whose reaper
/// dies stops, saying why.
#[test]
fn a_worker_whose_reaper_dies_stops() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", process::free_port());
    let mut child = keel()
        .args([
            "worker",
            "--coordinator",
            &url,
            "--id",
            "w1",
            "--exec",
            "true",
        ])
        .arg("--state-dir")
        .arg(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut worker = Proc::of(child);
    let pid = worker.id().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    // Past its reaper's start, the worker tries to reach the (absent) coordinator.
    wait_for("the worker serving", BOUND, || {
        log.lock().unwrap().contains("session lost")
    });
    let reaper = children(pid)[0];
    let status = std::process::Command::new("kill")
        .args(["-KILL", &reaper.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = worker.wait_exit(BOUND);
    assert!(!status.success());
    reader.join().unwrap();
    let text = log.lock().unwrap().clone();
    assert!(
        text.contains(&format!("the reaper (pid {reaper}) exited")),
        "{text}"
    );
}

/// A default id (host and pid) is never used again, so a worker stopped cleanly removes
/// its lock files and payload directory; they would pile up otherwise.
#[test]
fn a_worker_with_a_default_id_leaves_no_files_behind() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", process::free_port());
    let child = keel()
        .args(["worker", "--coordinator", &url, "--exec", "true"])
        .arg("--state-dir")
        .arg(dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut worker = Proc::of(child);
    let pid = worker.id().unwrap();
    wait_for("the reaper starting", BOUND, || !children(pid).is_empty());
    wait_for("the state files", BOUND, || {
        std::fs::read_dir(dir.path()).unwrap().count() == 3
    });
    worker.signal("TERM");
    assert!(worker.wait_exit(BOUND).success());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Kills the pids if a failed assertion left them running.
struct Reap(Vec<u32>);
impl Drop for Reap {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if alive(pid) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}
