//! The nemesis on real processes: `keel serve` (on Valkey, then on redb) with three
//! `keel worker --exec` processes and twenty jobs, while workers (one SIGKILLed and
//! started again at once with the same id), the coordinator and valkey-server are
//! SIGKILLed and started again, and the leader is paused (Valkey) or killed (redb) so
//! the other address takes over. Workers and clients are given both addresses.
//!
//! Then: every acknowledged job succeeded; no two executions of one task ran at once
//! (each task writes start, beat and end lines stamped with the time); every repeated
//! execution is explained by a kill that happened while the attempt before it was in
//! flight; each worker ran a task through the new leader after the takeover. The counts
//! are printed at the end.
//!
//! It takes about a minute per store, so the plain `cargo test` leaves it out:
//! `scripts/test.sh` runs it with `cargo test -p keel-cli --test nemesis -- --ignored
//! --nocapture`.

#![cfg(target_os = "linux")]

#[path = "nemesis/cluster.rs"]
mod cluster;
#[path = "nemesis/executions.rs"]
mod executions;
mod process;

use cluster::{now_ns, Cluster, Store};
use executions::KillKind;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

const JOBS: usize = 20;
const TASKS: usize = 10;

/// A task's script: `start`, a `beat` every 100 ms for `beats` beats, `end`, each
/// line `<what> <attempt> <shell pid> <ns>` appended to its own file. The lines are
/// written by a background subshell, a grandchild of the worker: the kernel's
/// parent-death signal reaches only the shell, so a writer that outlived a killed
/// worker would show up as an overlap unless the worker's reaper killed it.
fn script(runs: &std::path::Path, beats: usize) -> String {
    format!(
        r#"f={}/$KEEL_JOB_ID-$KEEL_TASK_ID
b() {{ echo "$1 $KEEL_ATTEMPT $$ $(date +%s%N)" >> "$f"; }}
(
b start
i=0
while [ $i -lt {beats} ]; do sleep 0.1; b beat; i=$((i+1)); done
b end
) &
wait
"#,
        runs.display()
    )
}

/// Twenty jobs of ten independent tasks, 0.5 to 1.4 s each, and one 3 s task in every
/// other job, so kills find tasks in flight.
fn job_files(c: &Cluster) -> Vec<(String, PathBuf)> {
    (0..JOBS)
        .map(|j| {
            let name = format!("nemesis-{j:02}");
            let mut toml = format!("[job]\nname = \"{name}\"\n");
            for t in 0..TASKS {
                let beats = if t == 0 && j % 2 == 0 {
                    30
                } else {
                    5 + (j * 7 + t * 3) % 10
                };
                let body = script(&c.runs, beats);
                toml += &format!("\n[[task]]\nid = \"t{t}\"\ncommand = '''\n{body}'''\n");
            }
            let path = c.dir.path().join(format!("{name}.toml"));
            std::fs::write(&path, toml).expect("the job file is written");
            (name, path)
        })
        .collect()
}

/// Whether worker `id` holds a lease now.
fn holds(c: &Cluster, id: &str) -> bool {
    c.workers_view().is_some_and(|view| {
        view.workers
            .iter()
            .any(|w| w.id == id && w.status == "active" && !w.leases.is_empty())
    })
}

/// The index of the server that leads now, waiting for one.
fn leading(c: &Cluster) -> usize {
    let mut found = None;
    c.wait("a coordinator leading", |c| {
        found = c.leader();
        found.is_some()
    });
    let address = found.unwrap_or_default();
    let port = |i: usize| format!(":{}", c.servers[i].port);
    (0..2)
        .find(|&i| address.ends_with(&port(i)) || address.contains(&format!("{}/", port(i))))
        .unwrap_or_else(|| c.fail(&format!("the leader {address} is neither address")))
}

/// The leader is paused (Valkey: the standby on the other address takes over once its
/// lease lapses) or killed (redb: the log admits one process, so the server on the
/// other address is started on it); then every worker must run a task through it.
fn takeover(c: &mut Cluster) {
    let from = leading(c);
    let to = 1 - from;
    let name = c.servers[from].name;
    c.record(KillKind::Takeover, name);
    let at_ms = (now_ns() / 1_000_000) as u64;
    match c.store {
        Store::Valkey => {
            if c.servers[to].proc.is_none() {
                c.spawn_server(to);
            }
            let paused = c.servers[from].proc.as_ref().expect("the leader runs");
            paused.proc.signal("STOP");
        }
        Store::Redb => {
            if let Some(mut old) = c.servers[from].proc.take() {
                old.proc.kill();
            }
            c.spawn_server(to);
        }
    }
    let port = format!(":{}", c.servers[to].port);
    c.wait("the other address taking over", |c| {
        c.leader().is_some_and(|a| a.contains(&port))
    });
    c.takeovers += 1;
    let ids: Vec<String> = c.workers.iter().map(|w| w.id.clone()).collect();
    c.wait("every worker running a task through the new leader", |c| {
        let Some(views) = c.describe_all() else {
            return false;
        };
        ids.iter().all(|id| {
            views.iter().flat_map(|v| &v.tasks).any(|t| {
                t.attempts
                    .iter()
                    .any(|a| &a.worker == id && a.started_at_ms >= at_ms)
            })
        })
    });
    if c.store == Store::Valkey {
        // The paused leader is killed and comes back as a standby on its address.
        if let Some(mut old) = c.servers[from].proc.take() {
            old.proc.kill();
        }
        c.spawn_server(from);
    }
}

fn nemesis(store: Store) {
    let mut c = Cluster::start(store);
    let files = job_files(&c);
    for (name, file) in &files[..JOBS / 2] {
        c.submit(name, file);
    }

    c.progress("before the first kill", 8);
    c.wait("w1 holding a lease", |c| holds(c, "w1"));
    c.kill_worker(0);

    c.progress("after w1 came back", 12);
    let leader = leading(&c);
    c.kill_server(leader);
    leading(&c);
    for (name, file) in &files[JOBS / 2..] {
        c.submit(name, file);
    }

    c.progress("after the coordinator came back", 12);
    takeover(&mut c);

    c.progress("after the takeover", 12);
    match store {
        Store::Valkey => c.kill_valkey(Duration::from_millis(1_500)),
        Store::Redb => {
            let leader = leading(&c);
            c.kill_server(leader);
        }
    }
    leading(&c);

    c.progress("after the store came back", 12);
    c.wait("w2 holding a lease", |c| holds(c, "w2"));
    c.kill_worker(1);

    c.progress("after w2 came back", 8);
    c.kill_worker(2);

    let mut finished = None;
    c.wait("every job finishing", |c| {
        finished = c.describe_all().filter(|views| {
            views
                .iter()
                .all(|v| v.status.as_ref().is_some_and(|s| !s.outcome.is_empty()))
        });
        finished.is_some()
    });
    check(&c, &finished.unwrap_or_default());
}

/// The run's counts in one line: jobs, tasks, executions, repeats by the kill that
/// explains them, overlaps, kills by kind, takeovers.
fn summary(
    c: &Cluster,
    succeeded: usize,
    tasks: usize,
    all: &BTreeMap<(u64, u64), Vec<executions::Execution>>,
    repeats: &[executions::Repeat],
    overlaps: usize,
) -> String {
    let executions: usize = all.values().map(Vec::len).sum();
    let mut explained: BTreeMap<String, usize> = BTreeMap::new();
    for r in repeats {
        let by = r.by.map_or("nothing".to_owned(), |k| k.to_string());
        *explained.entry(by).or_default() += 1;
    }
    let mut kills: BTreeMap<String, usize> = BTreeMap::new();
    for k in &c.kills {
        *kills.entry(k.kind.to_string()).or_default() += 1;
    }
    format!(
        "nemesis ({:?}) in {:.1}s: jobs acknowledged {}, succeeded {succeeded}; tasks {tasks}; executions {executions}; repeated executions {} explained by {explained:?}; overlaps {overlaps}; kills {kills:?}; takeovers {}",
        c.store,
        c.started.elapsed().as_secs_f64(),
        c.jobs.len(),
        repeats.len(),
        c.takeovers,
    )
}

/// Checks the run and prints its counts.
fn check(c: &Cluster, views: &[keel_grpc::proto::DescribeJobResponse]) {
    let succeeded = views
        .iter()
        .filter(|v| v.status.as_ref().is_some_and(|s| s.outcome == "succeeded"))
        .count();
    let tasks: usize = views.iter().map(|v| v.tasks.len()).sum();
    let all = executions::read(&c.runs);
    let overlaps = executions::overlaps(&all);
    let workers = Cluster::attempt_workers(views);
    let repeats = executions::repeats(&all, &c.kills, |task, attempt| {
        workers.get(&(task, attempt)).cloned()
    });
    eprintln!(
        "{}",
        summary(c, succeeded, tasks, &all, &repeats, overlaps.len())
    );
    if succeeded != c.jobs.len() || c.jobs.len() != JOBS {
        let outcomes: Vec<_> = views
            .iter()
            .filter_map(|v| v.status.as_ref())
            .map(|s| (s.id, s.outcome.clone()))
            .collect();
        c.fail(&format!(
            "not every acknowledged job succeeded: {outcomes:?}"
        ));
    }
    let ran: usize = all
        .values()
        .filter(|runs| runs.iter().any(|r| r.ended))
        .count();
    if tasks != JOBS * TASKS || ran != tasks {
        c.fail(&format!("{tasks} tasks, {ran} of them ran to their end"));
    }
    if !overlaps.is_empty() {
        let listed: Vec<String> = overlaps.iter().map(ToString::to_string).collect();
        c.fail(&format!(
            "two executions of one task ran at once:\n  {}",
            listed.join("\n  ")
        ));
    }
    let unexplained: Vec<String> = repeats
        .iter()
        .filter(|r| r.by.is_none())
        .map(ToString::to_string)
        .collect();
    if !unexplained.is_empty() {
        c.fail(&format!(
            "repeated executions no kill explains (kills at {:?} ns):\n  {}",
            c.kills
                .iter()
                .map(|k| (k.kind, k.at_ns))
                .collect::<Vec<_>>(),
            unexplained.join("\n  ")
        ));
    }
    if c.takeovers == 0 {
        c.fail("no takeover happened");
    }
}

#[test]
#[ignore = "about a minute of real processes and SIGKILLs; scripts/test.sh runs it with --ignored"]
fn nemesis_on_valkey() {
    nemesis(Store::Valkey);
}

#[test]
#[ignore = "about a minute of real processes and SIGKILLs; scripts/test.sh runs it with --ignored"]
fn nemesis_on_redb() {
    nemesis(Store::Redb);
}
