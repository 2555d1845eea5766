//! Every safety invariant of a state, checked from scratch. Tests and the simulator
//! call this after every step; `restore` checks every snapshot it loads against all
//! but the dispatch check (which holds for the rules of the engine that ran dispatch,
//! not of the bytes: a restored engine dispatches afresh instead).

use crate::ids::JobId;
use crate::queue;
use crate::state::{ReadyPlace, State, TaskState, WorkerStatus};
use crate::timers::Timer;
use std::collections::BTreeMap;

pub use crate::violation::{InvariantKind, Violation};

macro_rules! ensure {
    ($kind:ident, $cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::violation::Violation {
                kind: $crate::violation::InvariantKind::$kind,
                detail: format!($($msg)+),
            });
        }
    };
}

#[path = "accounting.rs"]
mod accounting;
#[path = "budget_invariants.rs"]
mod budgets;
#[path = "edge_invariants.rs"]
mod edges;
#[path = "schedule_invariants.rs"]
mod schedules;
#[path = "stream_invariants.rs"]
mod streams;
#[path = "task_invariants.rs"]
mod tasks;

/// Per job, the tasks the walk over all tasks found in each place.
#[derive(Default)]
struct JobCount {
    active: u32,
    queued: u32,
    parked: u32,
    remaining: u32,
    /// Bytes of the tasks' outputs.
    output: u64,
    /// Bytes of the tasks' kept stream frames.
    frames: u64,
}

/// What the walk over all tasks found, checked afterwards against the counters jobs,
/// tenants and the ready index keep.
#[derive(Default)]
struct Tally {
    per_job: BTreeMap<JobId, JobCount>,
    /// Tasks holding a grant or lease, per interned tenant id.
    per_tenant: BTreeMap<u32, u32>,
    queued_total: u64,
    held: accounting::TaskHoldings,
}

pub(crate) fn check(state: &State) -> Result<(), Violation> {
    check_stored(state)?;
    check_dispatch(state)
}

/// Every invariant of what a snapshot holds.
pub(crate) fn check_stored(state: &State) -> Result<(), Violation> {
    accounting::check_shape(state)?;
    check_references(state)?;
    let tally = tasks::walk(state)?;
    edges::check_edges(state)?;
    check_ready_index(state, tally.queued_total)?;
    check_jobs(state, tally.per_job)?;
    check_tenants(state, &tally.per_tenant)?;
    check_workers(state)?;
    accounting::check_counts(state, &tally.held)?;
    check_capsets(state)?;
    check_grants(state)?;
    check_rates(state)?;
    schedules::check_schedules(state)?;
    budgets::check_budgets(state)
}

/// Dispatch left no waiting worker a task it could be offered. `dispatch::run` relies on
/// it: after a change to one worker alone, it asks only that worker.
fn check_dispatch(state: &State) -> Result<(), Violation> {
    let unserved = crate::dispatch::unserved(state);
    ensure!(
        Dispatch,
        unserved.is_none(),
        "worker {} waits for work and could be offered a ready task",
        unserved.map(|w| w.to_string()).unwrap_or_default()
    );
    Ok(())
}

/// Every held task's rate key is interned and counted once per holder; every stored
/// bucket fits its configuration; a pending refill wake-up has its timer.
fn check_rates(state: &State) -> Result<(), Violation> {
    let slots = state.names.rates.slots() as u32;
    let mut holders: BTreeMap<u32, u64> = BTreeMap::new();
    for (tid, t) in state.tasks.iter() {
        if let Some(r) = t.rate {
            ensure!(
                Reference,
                r < slots && state.names.rates.refs(r) > 0,
                "task {tid} names a rate key that does not exist"
            );
            *holders.entry(r).or_default() += 1;
        }
    }
    for r in 0..slots {
        let (held, found) = (
            state.names.rates.refs(r),
            holders.get(&r).copied().unwrap_or(0),
        );
        ensure!(
            Count,
            held == found,
            "rate key {r} counts {held} holders, found {found}"
        );
    }
    for (key, b) in &state.buckets {
        ensure!(
            Limit,
            crate::rate::consistent(state, key, b),
            "{} bucket {:?} holds {} units at {} and is not within its configuration",
            key.0.as_str(),
            key.1,
            b.level,
            b.at
        );
    }
    if let Some(at) = state.rate_wake {
        ensure!(
            Timer,
            state.timers.contains(at, &Timer::RateRefill),
            "the rate refill wake-up at {at} has no timer"
        );
    }
    Ok(())
}

/// Every ready-index entry is a queued task under its own key, and there are as many
/// entries as queued tasks.
fn check_ready_index(state: &State, queued_total: u64) -> Result<(), Violation> {
    for (q, key) in state.ready.iter() {
        let t = state.tasks.get(&key.task);
        ensure!(
            ReadyIndex,
            t.is_some_and(|t| t.state
                == TaskState::Ready {
                    place: ReadyPlace::Queued
                }
                && t.ready_key() == key
                && q == t.queue_key()),
            "ready index holds {} which is not a queued task under that key",
            key.task
        );
    }
    ensure!(
        ReadyIndex,
        state.ready.len() == queued_total,
        "ready index length {} but {queued_total} queued tasks",
        state.ready.len()
    );
    Ok(())
}

/// Each job's counters match what the task walk found, within its cap.
fn check_jobs(state: &State, mut per_job: BTreeMap<JobId, JobCount>) -> Result<(), Violation> {
    for (jid, j) in &state.jobs {
        let c = per_job.remove(jid).unwrap_or_default();
        ensure!(
            Count,
            j.active == c.active,
            "job {jid} counts {} active, found {}",
            j.active,
            c.active
        );
        ensure!(
            Count,
            j.queued == c.queued,
            "job {jid} counts {} queued, found {}",
            j.queued,
            c.queued
        );
        ensure!(
            Count,
            j.parked.len() as u32 == c.parked,
            "job {jid} parks {} tasks, found {}",
            j.parked.len(),
            c.parked
        );
        ensure!(
            Count,
            j.remaining == c.remaining,
            "job {jid} counts {} remaining, found {}",
            j.remaining,
            c.remaining
        );
        ensure!(
            Reference,
            j.result.windows(2).all(|w| w[0] < w[1])
                && j.result.last().is_none_or(|&last| last < j.task_count),
            "job {jid} names result tasks {:?} that are not ascending offsets below {}",
            j.result,
            j.task_count
        );
        if let Some(cap) = j.max_concurrency {
            ensure!(
                ConcurrencyCap,
                j.active <= cap,
                "job {jid} has {} active tasks over its cap {cap}",
                j.active
            );
        }
        ensure!(
            Count,
            j.end.is_some() == (j.remaining == 0),
            "job {jid} end state disagrees with {} remaining tasks",
            j.remaining
        );
    }
    Ok(())
}

/// Each tenant's active count matches the tasks holding grants or leases, within its cap.
fn check_tenants(state: &State, per_tenant: &BTreeMap<u32, u32>) -> Result<(), Violation> {
    for (i, load) in state.tenants.iter().enumerate() {
        let found = per_tenant.get(&(i as u32)).copied().unwrap_or(0);
        let name = state.names.tenants.name(i as u32);
        ensure!(
            Count,
            load.active == found,
            "tenant {name} counts {} active, found {found}",
            load.active
        );
        if let Some(cap) = load.cap {
            ensure!(
                ConcurrencyCap,
                load.active <= cap.saturating_add(load.over_cap),
                "tenant {name} has {} active tasks over its cap {cap} (+{} from before it was lowered)",
                load.active,
                load.over_cap
            );
        }
        ensure!(
            ConcurrencyCap,
            load.over_cap <= load.active.saturating_sub(load.cap.unwrap_or(u32::MAX)),
            "tenant {name} keeps {} tasks over a cap it is not over",
            load.over_cap
        );
    }
    Ok(())
}

/// Each held capability set counts the live workers covering it, and blocks tasks only
/// while none does.
fn check_capsets(state: &State) -> Result<(), Violation> {
    for (i, set) in state.names.capsets.iter().enumerate().skip(1) {
        if !state.names.capset_held(i) {
            continue;
        }
        let live = queue::coverage(&state.workers, &set.caps);
        ensure!(
            Count,
            set.coverage == live,
            "capability set {:?} counts {} live workers, found {live}",
            set.caps,
            set.coverage
        );
        ensure!(
            Capability,
            set.coverage == 0 || set.blocked.is_empty(),
            "capability set {i} is covered but still blocks tasks"
        );
    }
    Ok(())
}

/// Every grant is held by the task it names, as an offer or a lease.
fn check_grants(state: &State) -> Result<(), Violation> {
    for (g, grant) in &state.grants {
        let t = state.tasks.get(&grant.task);
        let ok = t.is_some_and(|t| match &t.state {
            TaskState::Offered { grant: og } => og == g,
            TaskState::Running(l) => l.grant == *g,
            _ => false,
        });
        ensure!(Holding, ok, "grant {g} is not held by task {}", grant.task);
    }
    Ok(())
}

/// Every interned id a task, job, queue or tenant load refers to exists, so the rest of
/// the checker (and the engine after a restore) can index by them without panicking.
fn check_references(state: &State) -> Result<(), Violation> {
    let (lanes, tenants, capsets) = (
        state.names.lanes.slots() as u32,
        state.names.tenants.slots() as u32,
        state.names.capsets.len() as u32,
    );
    ensure!(
        Reference,
        state.tenants.len() as u32 == tenants,
        "{} tenant loads for {tenants} tenants",
        state.tenants.len()
    );
    ensure!(
        Reference,
        state.names.consistent(),
        "interned names and ids disagree"
    );
    ensure!(
        Reference,
        capsets > 0 && state.names.capsets[0].caps.is_empty(),
        "capability set 0 must be the empty set"
    );
    for (tid, t) in state.tasks.iter() {
        ensure!(
            Reference,
            t.lane < lanes && t.tenant < tenants && t.capset.0 < capsets,
            "task {tid} names a lane, tenant or capability set that does not exist"
        );
    }
    check_job_references(state, lanes, tenants)?;
    for (q, key) in state.ready.iter() {
        ensure!(
            Reference,
            q.lane < lanes && q.tenant < tenants && q.capset.0 < capsets,
            "ready entry {} names a lane, tenant or capability set that does not exist",
            key.task
        );
    }
    check_worker_lanes(state, lanes)
}

/// Every job names a live lane and tenant, and the job-name index and the jobs agree.
fn check_job_references(state: &State, lanes: u32, tenants: u32) -> Result<(), Violation> {
    for (jid, j) in &state.jobs {
        ensure!(
            Reference,
            j.lane < lanes && j.tenant < tenants,
            "job {jid} names a lane or tenant that does not exist"
        );
        // A name passes to a new job only once its job has finished.
        ensure!(
            Reference,
            j.end.is_some() || state.job_names.get(&j.name) == Some(jid),
            "live job {jid} is not the job its name {:?} stands for",
            j.name
        );
    }
    for (name, jid) in &state.job_names {
        ensure!(
            Reference,
            state.jobs.get(jid).is_some_and(|j| &j.name == name),
            "the name {name:?} stands for job {jid}, which is gone or named otherwise"
        );
    }
    Ok(())
}

/// Every worker's lane ids exist and match the lane names it registered with.
fn check_worker_lanes(state: &State, lanes: u32) -> Result<(), Violation> {
    for (wid, w) in &state.workers {
        ensure!(
            Reference,
            w.lanes.iter().all(|&l| l < lanes),
            "worker {wid} serves a lane that does not exist"
        );
        // No lane ids means every lane, which only the registration `["*"]` asks for.
        let all = w.lane_names.len() == 1 && w.lane_names[0] == crate::config::ALL_LANES;
        ensure!(
            Reference,
            w.lanes.is_empty() == all && (all || w.lanes.len() == w.lane_names.len()),
            "worker {wid} serves lanes {:?} as {} lane ids",
            w.lane_names,
            w.lanes.len()
        );
    }
    Ok(())
}

fn check_workers(state: &State) -> Result<(), Violation> {
    for (wid, w) in &state.workers {
        ensure!(
            Reference,
            *wid == w.id,
            "worker {wid} stored under the wrong id"
        );
        ensure!(
            ConcurrencyCap,
            w.active() <= w.max_concurrency,
            "worker {wid} holds {} over its concurrency {}",
            w.active(),
            w.max_concurrency
        );
        if w.status == WorkerStatus::Lost {
            ensure!(
                Holding,
                w.active() == 0,
                "lost worker {wid} still holds grants or leases"
            );
        }
        for g in &w.grants {
            ensure!(
                Holding,
                state
                    .grants
                    .get(g)
                    .is_some_and(|gr| gr.worker == *wid && gr.accepted.is_none()),
                "worker {wid} lists grant {g} it does not hold"
            );
        }
        for t in &w.leases {
            let ok = state
                .tasks
                .get(t)
                .is_some_and(|t| matches!(&t.state, TaskState::Running(l) if l.worker == *wid));
            ensure!(
                Holding,
                ok,
                "worker {wid} lists a lease on {t} it does not hold"
            );
        }
        ensure!(
            Timer,
            w.blacklisted_until.is_none()
                || state.timers.contains(
                    w.blacklisted_until.unwrap_or(0),
                    &Timer::BlacklistEnd(wid.clone())
                ),
            "blacklisted worker {wid} has no readmission timer"
        );
    }
    for w in &state.demand {
        ensure!(
            Credits,
            state.workers.get(w).is_some_and(|x| x.credits > 0),
            "worker {w} waits for work without credits"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ClientCommand, Config, Engine, Input, InstanceId, JobSpec, TaskSpec, WorkerCommand,
        WorkerId,
    };

    /// An engine with one task offered to one worker.
    fn offered() -> Engine {
        let mut e = Engine::new(Config::default());
        let w = WorkerId::new("w");
        let register = WorkerCommand::Register {
            capabilities: vec![],
            lanes: vec![],
            max_concurrency: 1,
        };
        e.apply(0, Input::worker(&w, InstanceId(1), register));
        let job = JobSpec::new("j", vec![TaskSpec::new("a")]);
        e.apply(0, Input::Client(ClientCommand::SubmitJob(job)));
        let request = WorkerCommand::RequestWork { credits: 1 };
        e.apply(1, Input::worker(&w, InstanceId(1), request));
        e
    }

    #[test]
    fn a_broken_state_is_reported_with_the_kind_of_invariant_it_breaks() {
        let e = offered();
        assert_eq!(check(&e.state), Ok(()));
        let mut state = e.state.clone();
        if let Some(j) = state.jobs.values_mut().next() {
            j.active += 1;
        }
        let v = check(&state).unwrap_err();
        assert_eq!(v.kind, InvariantKind::Count, "{v}");
        assert!(v.to_string().starts_with("count: job "), "{v}");
        let mut state = e.state.clone();
        if let Some(w) = state.workers.values_mut().next() {
            w.grants.clear();
        }
        assert_eq!(check(&state).unwrap_err().kind, InvariantKind::Holding);
    }

    #[test]
    fn kind_labels_are_distinct() {
        let labels: std::collections::BTreeSet<&str> =
            InvariantKind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(labels.len(), InvariantKind::ALL.len());
    }
}
