//! Every safety invariant of a state, checked from scratch. Tests and the simulator
//! call this after every step; `restore` calls it on every snapshot it loads.

use crate::ids::{TaskId, WorkerId};
use crate::intern::{covers, CapSetId};
use crate::queue;
use crate::ready::QueueKey;
use crate::state::{ReadyPlace, State, TaskState, WorkerStatus};
use crate::timers::Timer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The first invariant found broken, described for a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation(pub String);

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Violation {}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(Violation(format!($($msg)+)));
        }
    };
}

#[derive(Default)]
struct JobCount {
    active: u32,
    queued: u32,
    parked: u32,
    remaining: u32,
}

pub(crate) fn check(s: &State) -> Result<(), Violation> {
    check_references(s)?;
    let mut per_job: BTreeMap<crate::ids::JobId, JobCount> = BTreeMap::new();
    let mut per_tenant: BTreeMap<u32, u32> = BTreeMap::new();
    let mut queued_total = 0u64;
    for (tid, t) in s.tasks.iter() {
        let tid = &tid;
        ensure!(*tid == t.id, "task {tid} stored under the wrong id");
        ensure!(
            s.jobs.contains_key(&t.job),
            "task {tid} belongs to unknown job {}",
            t.job
        );
        let c = per_job.entry(t.job).or_default();
        if !t.is_terminal() {
            c.remaining += 1;
        }
        check_history(*tid, t)?;
        match &t.state {
            TaskState::Offered { grant } => {
                c.active += 1;
                *per_tenant.entry(t.tenant).or_default() += 1;
                let g = s.grants.get(grant);
                ensure!(
                    g.is_some_and(|g| g.task == *tid && g.accepted.is_none()),
                    "task {tid} offered under grant {grant} that is missing or not a pending offer for it"
                );
                let g = &s.grants[grant];
                let w = holder(s, &g.worker, *tid)?;
                ensure!(
                    w.grants.contains(grant),
                    "worker {} does not list grant {grant}",
                    g.worker
                );
                ensure!(
                    w.instance == g.instance,
                    "grant {grant} names a stale instance of {}",
                    g.worker
                );
                ensure!(
                    covers(&w.capabilities, s.names.caps(t.capset)),
                    "task {tid} offered to {} which lacks {:?}",
                    g.worker,
                    s.names.caps(t.capset)
                );
                if let Some(first) = w.blacklisted_from_grant {
                    ensure!(
                        *grant < first,
                        "grant {grant} offered to blacklisted worker {}",
                        g.worker
                    );
                }
                ensure!(
                    s.timers.contains(g.expires_at, &Timer::GrantExpiry(*grant)),
                    "grant {grant} has no expiry timer"
                );
            }
            TaskState::Running(l) => {
                c.active += 1;
                *per_tenant.entry(t.tenant).or_default() += 1;
                let w = holder(s, &l.worker, *tid)?;
                ensure!(
                    w.leases.contains(tid),
                    "worker {} does not list its lease on {tid}",
                    l.worker
                );
                ensure!(
                    w.instance == l.instance,
                    "lease on {tid} names a stale instance of {}",
                    l.worker
                );
                ensure!(
                    covers(&w.capabilities, s.names.caps(t.capset)),
                    "task {tid} runs on {} which lacks {:?}",
                    l.worker,
                    s.names.caps(t.capset)
                );
                let g = s.grants.get(&l.grant);
                ensure!(
                    g.is_some_and(|g| g
                        .accepted
                        .is_some_and(|f| f.epoch == t.epoch && f.task == *tid)),
                    "lease on {tid} does not match an accepted grant at epoch {}",
                    t.epoch
                );
                ensure!(
                    l.timer_at <= l.expires_at,
                    "lease timer on {tid} after its expiry"
                );
                ensure!(
                    l.expires_at > s.now,
                    "lease on {tid} expired at {} but is still held at {}",
                    l.expires_at,
                    s.now
                );
                ensure!(
                    s.timers.contains(l.timer_at, &Timer::LeaseExpiry(*tid)),
                    "lease on {tid} has no expiry timer"
                );
                ensure!(
                    t.history
                        .last()
                        .is_some_and(|r| r.epoch == t.epoch && r.ended.is_none()),
                    "lease on {tid} has no open attempt record"
                );
            }
            TaskState::Ready { place } => {
                let key = t.ready_key();
                match place {
                    ReadyPlace::Queued => {
                        c.queued += 1;
                        queued_total += 1;
                    }
                    ReadyPlace::Parked => {
                        c.parked += 1;
                        ensure!(
                            s.jobs[&t.job].parked.contains(&key),
                            "parked task {tid} missing from its job's parked set"
                        );
                    }
                    ReadyPlace::Blocked => {
                        let set = &s.names.capsets[t.capset.0 as usize];
                        ensure!(
                            set.blocked.contains(tid),
                            "blocked task {tid} missing from its capability set"
                        );
                        ensure!(
                            set.coverage == 0 && t.capset != CapSetId::ANY,
                            "task {tid} is blocked although a live worker covers it"
                        );
                    }
                }
            }
            TaskState::Delayed { until } => {
                ensure!(
                    s.timers.contains(*until, &Timer::TaskDue(*tid)),
                    "delayed task {tid} has no timer"
                );
            }
            TaskState::Waiting | TaskState::Suspended { .. } | TaskState::Done(_) => {}
        }
    }
    for (q, key) in s.ready.iter() {
        let t = s.tasks.get(&key.task);
        ensure!(
            t.is_some_and(|t| t.state
                == TaskState::Ready {
                    place: ReadyPlace::Queued
                }
                && t.ready_key() == key
                && q == QueueKey {
                    lane: t.lane,
                    tenant: t.tenant,
                    capset: t.capset
                }),
            "ready index holds {} which is not a queued task under that key",
            key.task
        );
    }
    ensure!(
        s.ready.len() == queued_total,
        "ready index length {} but {queued_total} queued tasks",
        s.ready.len()
    );
    for (jid, j) in &s.jobs {
        let c = per_job.remove(jid).unwrap_or_default();
        ensure!(
            j.active == c.active,
            "job {jid} counts {} active, found {}",
            j.active,
            c.active
        );
        ensure!(
            j.queued == c.queued,
            "job {jid} counts {} queued, found {}",
            j.queued,
            c.queued
        );
        ensure!(
            j.parked.len() as u32 == c.parked,
            "job {jid} parks {} tasks, found {}",
            j.parked.len(),
            c.parked
        );
        ensure!(
            j.remaining == c.remaining,
            "job {jid} counts {} remaining, found {}",
            j.remaining,
            c.remaining
        );
        if let Some(cap) = j.max_concurrency {
            ensure!(
                j.active <= cap,
                "job {jid} has {} active tasks over its cap {cap}",
                j.active
            );
        }
        ensure!(
            j.end.is_some() == (j.remaining == 0),
            "job {jid} end state disagrees with {} remaining tasks",
            j.remaining
        );
    }
    for (i, load) in s.tenants.iter().enumerate() {
        let found = per_tenant.get(&(i as u32)).copied().unwrap_or(0);
        ensure!(
            load.active == found,
            "tenant {} counts {} active, found {found}",
            s.names.tenants.get(i).map_or("?", String::as_str),
            load.active
        );
        if let Some(cap) = load.cap {
            ensure!(
                load.active <= cap,
                "tenant {} has {} active tasks over its cap {cap}",
                s.names.tenants.get(i).map_or("?", String::as_str),
                load.active
            );
        }
    }
    check_workers(s)?;
    for (i, set) in s.names.capsets.iter().enumerate().skip(1) {
        let live = queue::coverage(&s.workers, &set.caps);
        ensure!(
            set.coverage == live,
            "capability set {:?} counts {} live workers, found {live}",
            set.caps,
            set.coverage
        );
        ensure!(
            set.coverage == 0 || set.blocked.is_empty(),
            "capability set {i} is covered but still blocks tasks"
        );
    }
    for (g, grant) in &s.grants {
        let t = s.tasks.get(&grant.task);
        let ok = t.is_some_and(|t| match &t.state {
            TaskState::Offered { grant: og } => og == g,
            TaskState::Running(l) => l.grant == *g,
            _ => false,
        });
        ensure!(ok, "grant {g} is not held by task {}", grant.task);
    }
    Ok(())
}

/// Every interned id a task, job, queue or tenant load refers to exists, so the rest of
/// the checker (and the engine after a restore) can index by them without panicking.
fn check_references(s: &State) -> Result<(), Violation> {
    let (lanes, tenants, capsets) = (
        s.names.lanes.len() as u32,
        s.names.tenants.len() as u32,
        s.names.capsets.len() as u32,
    );
    ensure!(
        s.tenants.len() as u32 == tenants,
        "{} tenant loads for {tenants} tenants",
        s.tenants.len()
    );
    ensure!(s.names.consistent(), "interned names and ids disagree");
    ensure!(
        capsets > 0 && s.names.capsets[0].caps.is_empty(),
        "capability set 0 must be the empty set"
    );
    for (tid, t) in s.tasks.iter() {
        ensure!(
            t.lane < lanes && t.tenant < tenants && t.capset.0 < capsets,
            "task {tid} names a lane, tenant or capability set that does not exist"
        );
    }
    for (jid, j) in &s.jobs {
        ensure!(
            j.lane < lanes && j.tenant < tenants,
            "job {jid} names a lane or tenant that does not exist"
        );
        // A name passes to a new job only once its job has finished.
        ensure!(
            j.end.is_some() || s.job_names.get(&j.name) == Some(jid),
            "live job {jid} is not the job its name {:?} stands for",
            j.name
        );
    }
    for (name, jid) in &s.job_names {
        ensure!(
            s.jobs.get(jid).is_some_and(|j| &j.name == name),
            "the name {name:?} stands for job {jid}, which is gone or named otherwise"
        );
    }
    for (q, key) in s.ready.iter() {
        ensure!(
            q.lane < lanes && q.tenant < tenants && q.capset.0 < capsets,
            "ready entry {} names a lane, tenant or capability set that does not exist",
            key.task
        );
    }
    for (wid, w) in &s.workers {
        ensure!(
            w.lanes.iter().all(|&l| l < lanes),
            "worker {wid} serves a lane that does not exist"
        );
        // No lane ids means every lane, which only the registration `["*"]` asks for.
        let all = w.lane_names.len() == 1 && w.lane_names[0] == crate::ALL_LANES;
        ensure!(
            w.lanes.is_empty() == all && (all || w.lanes.len() == w.lane_names.len()),
            "worker {wid} serves lanes {:?} as {} lane ids",
            w.lane_names,
            w.lanes.len()
        );
    }
    Ok(())
}

fn holder<'a>(
    s: &'a State,
    w: &WorkerId,
    tid: TaskId,
) -> Result<&'a crate::state::Worker, Violation> {
    let worker = s
        .workers
        .get(w)
        .ok_or_else(|| Violation(format!("task {tid} held by unknown worker {w}")))?;
    ensure!(
        worker.status != WorkerStatus::Lost,
        "task {tid} held by lost worker {w}"
    );
    Ok(worker)
}

fn check_history(tid: TaskId, t: &crate::state::Task) -> Result<(), Violation> {
    let mut last_epoch = 0;
    for (i, r) in t.history.iter().enumerate() {
        ensure!(
            r.epoch > last_epoch,
            "task {tid} attempt epochs do not strictly increase"
        );
        last_epoch = r.epoch;
        let open = r.ended.is_none();
        ensure!(
            !open || i + 1 == t.history.len(),
            "task {tid} has an open attempt that is not the last"
        );
    }
    ensure!(
        last_epoch == t.epoch,
        "task {tid} epoch {} differs from its last attempt's {last_epoch}",
        t.epoch
    );
    let running = matches!(t.state, TaskState::Running(_));
    let open = t.history.last().is_some_and(|r| r.ended.is_none());
    ensure!(
        running == open,
        "task {tid} running={running} but open attempt={open}"
    );
    Ok(())
}

fn check_workers(s: &State) -> Result<(), Violation> {
    for (wid, w) in &s.workers {
        ensure!(*wid == w.id, "worker {wid} stored under the wrong id");
        ensure!(
            w.active() <= w.max_concurrency,
            "worker {wid} holds {} over its concurrency {}",
            w.active(),
            w.max_concurrency
        );
        if w.status == WorkerStatus::Lost {
            ensure!(
                w.active() == 0,
                "lost worker {wid} still holds grants or leases"
            );
        }
        for g in &w.grants {
            ensure!(
                s.grants
                    .get(g)
                    .is_some_and(|gr| gr.worker == *wid && gr.accepted.is_none()),
                "worker {wid} lists grant {g} it does not hold"
            );
        }
        for t in &w.leases {
            let ok = s
                .tasks
                .get(t)
                .is_some_and(|t| matches!(&t.state, TaskState::Running(l) if l.worker == *wid));
            ensure!(ok, "worker {wid} lists a lease on {t} it does not hold");
        }
        ensure!(
            w.blacklisted_until.is_none()
                || s.timers.contains(
                    w.blacklisted_until.unwrap_or(0),
                    &Timer::BlacklistEnd(wid.clone())
                ),
            "blacklisted worker {wid} has no readmission timer"
        );
    }
    for w in &s.demand {
        ensure!(
            s.workers.get(w).is_some_and(|x| x.credits > 0),
            "worker {w} waits for work without credits"
        );
    }
    Ok(())
}
