//! What the tasks wrote: each execution appends `start`, a `beat` every 100 ms and
//! `end` lines (`<what> <attempt> <shell pid> <ns since the epoch>`) to a file named
//! `<job id>-<task id>`. From them: executions per task, overlaps between executions of
//! one task, and for each repeated execution the kill that explains it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// A kind of fault the test injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KillKind {
    /// A worker SIGKILLed (and started again with the same id).
    Worker,
    /// The leading coordinator SIGKILLed and started again on its address.
    Coordinator,
    /// valkey-server SIGKILLed and started again on its data.
    Valkey,
    /// The leader paused (Valkey) or SIGKILLed (redb) and the other address took over.
    Takeover,
}

impl fmt::Display for KillKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KillKind::Worker => "worker kill",
            KillKind::Coordinator => "coordinator kill",
            KillKind::Valkey => "valkey kill",
            KillKind::Takeover => "takeover",
        })
    }
}

/// A fault, when it was injected (ns since the epoch, the tasks' clock) and on what.
#[derive(Clone, Debug)]
pub struct Kill {
    pub at_ns: u128,
    pub kind: KillKind,
    /// The worker id, or the server's name.
    pub target: String,
}

/// One run of a task's command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    pub attempt: u32,
    pub pid: u32,
    pub start_ns: u128,
    /// The last line it wrote: it was alive until then at least.
    pub last_ns: u128,
    pub ended: bool,
}

/// Executions per task file (`<job>-<task>`), each task's in order of start.
pub fn read(runs: &Path) -> BTreeMap<(u64, u64), Vec<Execution>> {
    let mut found = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(runs) else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((job, task)) = name.split_once('-') else {
            continue;
        };
        let (Ok(job), Ok(task)) = (job.parse(), task.parse()) else {
            continue;
        };
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        found.insert((job, task), executions(&text));
    }
    found
}

/// The executions in one task's file. A line cut short by a kill is skipped.
fn executions(text: &str) -> Vec<Execution> {
    let mut by_run: BTreeMap<(u32, u32), Execution> = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [what, attempt, pid, at] = fields[..] else {
            continue;
        };
        let (Ok(attempt), Ok(pid), Ok(at)) = (attempt.parse(), pid.parse(), at.parse::<u128>())
        else {
            continue;
        };
        let run = by_run.entry((attempt, pid)).or_insert(Execution {
            attempt,
            pid,
            start_ns: at,
            last_ns: at,
            ended: false,
        });
        run.start_ns = run.start_ns.min(at);
        run.last_ns = run.last_ns.max(at);
        run.ended |= what == "end";
    }
    let mut runs: Vec<Execution> = by_run.into_values().collect();
    runs.sort_by_key(|r| r.start_ns);
    runs
}

/// Executions started so far, over every task.
pub fn started(runs: &Path) -> usize {
    read(runs).values().map(Vec::len).sum()
}

/// Two executions of one task that ran at once.
#[derive(Debug)]
pub struct Overlap {
    pub task: (u64, u64),
    pub first: Execution,
    pub second: Execution,
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (job, task) = self.task;
        write!(
            f,
            "j{job}/t{task}: {} then {}, {} ms at once",
            self.first,
            self.second,
            (self.first.last_ns - self.second.start_ns) / 1_000_000
        )
    }
}

impl fmt::Display for Execution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "attempt {} (pid {}, {} .. {} ns{})",
            self.attempt,
            self.pid,
            self.start_ns,
            self.last_ns,
            if self.ended { "" } else { ", cut short" }
        )
    }
}

/// Every pair of consecutive executions of a task where the second started before the
/// first's last sign of life.
pub fn overlaps(all: &BTreeMap<(u64, u64), Vec<Execution>>) -> Vec<Overlap> {
    let mut found = Vec::new();
    for (task, runs) in all {
        for pair in runs.windows(2) {
            if pair[1].start_ns <= pair[0].last_ns {
                found.push(Overlap {
                    task: *task,
                    first: pair[0].clone(),
                    second: pair[1].clone(),
                });
            }
        }
    }
    found
}

/// A task's execution after its first, and what explains it.
#[derive(Debug)]
pub struct Repeat {
    pub task: (u64, u64),
    pub before: Execution,
    pub again: Execution,
    /// The kill that happened while the earlier execution's attempt was in flight (from
    /// [`GRANT_LEAD_NS`] before its start to the start of this one), `None` if nothing
    /// explains it.
    pub by: Option<KillKind>,
}

impl fmt::Display for Repeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (job, task) = self.task;
        write!(f, "j{job}/t{task}: {} again as {}", self.before, self.again)
    }
}

/// How long before an execution's first line its attempt may have been granted: the
/// grant crosses the network, the worker spawns a shell, and the shell stamps its start
/// line. A coordinator paused in that gap has already granted the attempt it then loses.
pub const GRANT_LEAD_NS: u128 = 500_000_000;

/// Explains every repeated execution by a kill that happened while the attempt before
/// it was in flight: its worker's own kill first, then a coordinator kill, a Valkey
/// kill, a takeover. `worker_of(task, attempt)` names the worker that ran an attempt.
pub fn repeats(
    all: &BTreeMap<(u64, u64), Vec<Execution>>,
    kills: &[Kill],
    worker_of: impl Fn((u64, u64), u32) -> Option<String>,
) -> Vec<Repeat> {
    let mut found = Vec::new();
    for (task, runs) in all {
        for pair in runs.windows(2) {
            let (before, again) = (&pair[0], &pair[1]);
            let worker = worker_of(*task, before.attempt);
            let granted_ns = before.start_ns.saturating_sub(GRANT_LEAD_NS);
            let in_flight = |k: &&Kill| granted_ns <= k.at_ns && k.at_ns <= again.start_ns;
            let by = kills
                .iter()
                .filter(in_flight)
                .filter(|k| k.kind != KillKind::Worker || Some(&k.target) == worker.as_ref())
                .map(|k| k.kind)
                .min();
            found.push(Repeat {
                task: *task,
                before: before.clone(),
                again: again.clone(),
                by,
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(attempt: u32, start_ns: u128, last_ns: u128) -> Execution {
        Execution {
            attempt,
            pid: attempt,
            start_ns,
            last_ns,
            ended: true,
        }
    }

    #[test]
    fn lines_make_executions_and_overlaps_and_kills_explain_repeats() {
        let text = "start 1 10 100\nbeat 1 10 200\nstart 2 11 150\nbeat 1 1\nend 2 11 300\n";
        let runs = executions(text);
        assert_eq!(runs.len(), 2);
        assert_eq!(
            (runs[0].start_ns, runs[0].last_ns, runs[0].ended),
            (100, 200, false)
        );
        assert_eq!(
            (runs[1].start_ns, runs[1].last_ns, runs[1].ended),
            (150, 300, true)
        );
        let all = BTreeMap::from([((1, 1), runs)]);
        assert_eq!(overlaps(&all).len(), 1);

        let all = BTreeMap::from([((1, 1), vec![run(1, 100, 200), run(2, 500, 600)])]);
        assert!(overlaps(&all).is_empty());
        let kill = |at_ns, kind, target: &str| Kill {
            at_ns,
            kind,
            target: target.into(),
        };
        let worker = |_, _| Some("w1".to_string());
        let other = [kill(300, KillKind::Worker, "w2")];
        assert_eq!(repeats(&all, &other, worker)[0].by, None);
        let late = [kill(700, KillKind::Coordinator, "a")];
        assert_eq!(repeats(&all, &late, worker)[0].by, None);
        let both = [
            kill(150, KillKind::Takeover, "a"),
            kill(400, KillKind::Worker, "w1"),
        ];
        assert_eq!(repeats(&all, &both, worker)[0].by, Some(KillKind::Worker));

        let start = 10 * GRANT_LEAD_NS;
        let all = BTreeMap::from([(
            (1, 1),
            vec![run(1, start, start + 1), run(2, 2 * start, 3 * start)],
        )]);
        let granted = [kill(start - GRANT_LEAD_NS, KillKind::Takeover, "a")];
        assert_eq!(
            repeats(&all, &granted, worker)[0].by,
            Some(KillKind::Takeover)
        );
        let earlier = [kill(start - GRANT_LEAD_NS - 1, KillKind::Takeover, "a")];
        assert_eq!(repeats(&all, &earlier, worker)[0].by, None);
    }
}
