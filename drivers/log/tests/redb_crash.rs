//! A process appending to the redb log is killed with SIGKILL mid-stream. Reopened, the
//! log holds every batch the process saw acknowledged and no part of any other batch.

use keel_log::{scan, Log, LogError, RedbLog};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const P: u32 = 0;
const CHILD_DIR: &str = "KEEL_REDB_CHILD_DIR";
const CHILD_ROUND: &str = "KEEL_REDB_CHILD_ROUND";

/// Batch `batch` of round `round` holds `size` entries `round:batch:index:size`.
fn batch(round: u32, batch: u32) -> Vec<Vec<u8>> {
    let size = 1 + batch % 9;
    (0..size)
        .map(|i| format!("{round}:{batch}:{i}:{size}").into_bytes())
        .collect()
}

#[tokio::test]
#[ignore = "the appending child process of killed_mid_append_keeps_acknowledged_batches"]
async fn child_appends_until_killed() {
    let (Ok(dir), Ok(round)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ROUND)) else {
        panic!("run by killed_mid_append_keeps_acknowledged_batches with {CHILD_DIR} and {CHILD_ROUND} set");
    };
    let round: u32 = round.parse().expect("round number");
    let log = RedbLog::open(std::path::Path::new(&dir)).expect("open");
    // The same holder as the killed process, as a restarted coordinator would be.
    let lease = log
        .acquire(P, "child", Duration::from_secs(600))
        .await
        .expect("acquire");
    let mut end = log.bounds(P).await.expect("bounds").end;
    let mut stdout = std::io::stdout().lock();
    for n in 0..200_000 {
        end = log
            .append(P, lease.epoch, end, &batch(round, n))
            .await
            .expect("append");
        writeln!(stdout, "acked {n}")
            .and_then(|()| stdout.flush())
            .expect("report");
    }
}

/// Runs the child for one round, killing it after it reports `kill_after` batches.
fn run_child(dir: &std::path::Path, round: u32, kill_after: u32) -> u32 {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_appends_until_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_acked = None;
    let mut lines = BufReader::new(child.stdout.take().expect("child stdout")).lines();
    let mut note = |line: String| {
        // libtest prints its "test ... " prefix on the first line.
        let report = line.rsplit_once("acked ").map(|(_, n)| n.to_owned());
        let n = report.and_then(|n| n.parse::<u32>().ok());
        if n.is_some() {
            last_acked = n;
        }
        n
    };
    for line in lines.by_ref().map_while(Result::ok) {
        if note(line).is_some_and(|n| n >= kill_after) || Instant::now() > deadline {
            break;
        }
    }
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    // The child ran on while this process read; what it reported before it died is
    // still in the pipe.
    for line in lines.map_while(Result::ok) {
        note(line);
    }
    last_acked.expect("the child acknowledged batches before it was killed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_append_keeps_acknowledged_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = BTreeMap::new();
    for (round, kill_after) in [(0, 40), (1, 15), (2, 70)] {
        acked.insert(round, run_child(dir.path(), round, kill_after));
    }
    let log = RedbLog::open(dir.path()).expect("reopen after the kills");
    let mut seen: BTreeMap<(u32, u32), (u32, u32)> = BTreeMap::new();
    let mut order = Vec::new();
    scan(&log, P, 0, |record| -> Result<(), LogError> {
        let text = String::from_utf8(record.payload).expect("utf-8 payload");
        let f: Vec<u32> = text
            .split(':')
            .map(|x| x.parse().expect("number"))
            .collect();
        let (round, n, index, size) = (f[0], f[1], f[2], f[3]);
        let entry = seen.entry((round, n)).or_insert((0, size));
        assert_eq!(index, entry.0, "entries of batch {round}:{n} in order");
        entry.0 += 1;
        order.push((round, n));
        Ok(())
    })
    .await
    .expect("the log reads back cleanly after the kills");
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "batches in the order they were appended"
    );
    for (&(round, n), &(count, size)) in &seen {
        assert_eq!(count, size, "batch {round}:{n} is complete, not partial");
    }
    for (&round, &last) in &acked {
        for n in 0..=last {
            assert!(
                seen.contains_key(&(round, n)),
                "acknowledged batch {round}:{n} survived"
            );
        }
        let stored = seen.keys().filter(|(r, _)| *r == round).count() as u32;
        assert!(
            stored <= last + 2,
            "round {round}: at most one batch beyond the last acknowledged one"
        );
    }
}
