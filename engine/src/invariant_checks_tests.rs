//! Each part of the invariant check catches the corruption it exists for. The checks
//! guard every restored snapshot and every simulated step, so a part that silently
//! passed everything would let a broken state through: each test breaks one thing in a
//! consistent state and expects that part's own report.

use crate::hostile_snapshots::busy;
use crate::ids::{GrantId, TaskId, WorkerId};
use crate::input::{Input, WorkerCommand};
use crate::invariants::{check, InvariantKind};
use crate::state::State;
use crate::{Engine, InstanceId};

/// The report `state` gets, which must be of `kind` and mention `words`.
pub(crate) fn caught(state: &State, kind: InvariantKind, words: &str) {
    let violation = check(state).expect_err("the corruption must be caught");
    assert_eq!(violation.kind, kind, "{violation}");
    assert!(violation.detail.contains(words), "{violation}");
}

/// The queued task "c" of job "k".
const QUEUED: TaskId = TaskId(3);

#[test]
fn the_consistent_state_passes() {
    assert_eq!(check(&busy()), Ok(()));
}

#[test]
fn a_queued_task_missing_from_the_ready_index_is_caught() {
    let mut state = busy();
    let t = state.tasks.get(&QUEUED).expect("task c");
    let q = t.queue_key();
    let key = t.ready_key();
    assert!(state.ready.remove(q, key));
    caught(&state, InvariantKind::ReadyIndex, "ready index length 0");
}

#[test]
fn a_queued_task_filed_under_another_rank_is_caught() {
    let mut state = busy();
    let t = state.tasks.get(&QUEUED).expect("task c");
    let (q, key) = (t.queue_key(), t.ready_key());
    assert!(state.ready.remove(q, key));
    let rank = key.rank + 1;
    state
        .ready
        .insert(q, crate::ready::ReadyKey { rank, ..key });
    caught(&state, InvariantKind::ReadyIndex, "ready index holds t3");
}

#[test]
fn a_tenant_counting_a_slot_nobody_holds_is_caught() {
    let mut state = busy();
    state.tenants[0].active += 1;
    caught(&state, InvariantKind::Count, "counts 2 active, found 1");
}

#[test]
fn a_capability_set_miscounting_its_workers_is_caught() {
    // A worker with "gpu" joins, so no task waits blocked on the set.
    let mut engine = Engine { state: busy() };
    let register = WorkerCommand::Register {
        capabilities: vec!["gpu".into()],
        lanes: vec![],
        max_concurrency: 1,
    };
    engine.apply(
        2,
        Input::worker(&WorkerId::new("w2"), InstanceId(1), register),
    );
    let mut state = engine.state;
    assert_eq!(check(&state), Ok(()));
    state.names.capsets[1].coverage = 5;
    caught(
        &state,
        InvariantKind::Count,
        "counts 5 live workers, found 1",
    );
}

#[test]
fn a_grant_no_task_holds_is_caught() {
    let mut state = busy();
    let mut stray = state.grants.values().next().expect("a grant").clone();
    stray.id = GrantId(99);
    state.grants.insert(GrantId(99), stray);
    caught(&state, InvariantKind::Holding, "grant g99 is not held");
}

#[test]
fn a_live_job_its_name_does_not_stand_for_is_caught() {
    let mut state = busy();
    state.job_names.remove("k");
    caught(&state, InvariantKind::Reference, "is not the job its name");
}

#[test]
fn a_worker_serving_a_lane_that_does_not_exist_is_caught() {
    let mut state = busy();
    let worker = state.workers.values_mut().next().expect("a worker");
    worker.lanes.push(999);
    caught(
        &state,
        InvariantKind::Reference,
        "serves a lane that does not exist",
    );
}

#[test]
fn a_worker_holding_more_than_its_concurrency_is_caught() {
    let mut state = busy();
    let worker = state
        .workers
        .values_mut()
        .find(|w| w.active() > 0)
        .expect("a worker holding work");
    worker.max_concurrency = worker.active() - 1;
    caught(
        &state,
        InvariantKind::ConcurrencyCap,
        "over its concurrency",
    );
}

/// `busy()` with schedule "s" added (due every minute from time 0) and its first run
/// fired and still running.
fn with_schedule() -> State {
    use crate::input::ClientCommand;
    use crate::schedule_spec::{Overlap, ScheduleCommand, ScheduleSpec, Trigger};
    use crate::spec::{JobSpec, TaskSpec};
    let mut engine = Engine { state: busy() };
    let mut spec = ScheduleSpec::new(
        "s",
        JobSpec::new("tmpl", vec![TaskSpec::new("a")]),
        Trigger::Every {
            interval_ms: 60_000,
        },
    );
    spec.overlap = Overlap::QueueOne;
    let add = ClientCommand::Schedule(ScheduleCommand::Add(Box::new(spec)));
    engine.apply(2, Input::Client(add));
    engine.apply(60_002, Input::Tick);
    let state = engine.state;
    assert_eq!(check(&state), Ok(()));
    assert_eq!(state.schedule_runs.len(), 1, "the first run is running");
    state
}

#[test]
fn a_schedule_due_without_its_timer_is_caught() {
    let mut state = with_schedule();
    let s = state.schedules.get_mut("s").expect("schedule s");
    s.next_due = s.next_due.map(|t| t + 1);
    caught(
        &state,
        InvariantKind::Timer,
        "schedule \"s\" is due at 120003 without a timer",
    );
}

#[test]
fn a_schedule_run_it_does_not_count_is_caught() {
    let mut state = with_schedule();
    state
        .schedules
        .get_mut("s")
        .expect("schedule s")
        .active
        .clear();
    caught(
        &state,
        InvariantKind::Count,
        "1 runs are mapped to schedules, the schedules count 0",
    );
}

#[test]
fn a_paused_schedule_still_due_is_caught() {
    let mut state = with_schedule();
    state.schedules.get_mut("s").expect("schedule s").paused = true;
    caught(
        &state,
        InvariantKind::Timer,
        "paused schedule \"s\" still has a due time",
    );
}

/// An engine whose job "j" has reached its own attempts limit of 1 (one task offered,
/// one held back) and whose tenant "default" has a resetting tokens budget with use.
fn with_budgets() -> State {
    use crate::budget_spec::{BudgetSpec, DimensionLimit, ATTEMPTS};
    use crate::input::ClientCommand;
    use crate::spec::{JobSpec, TaskSpec};
    use std::collections::BTreeMap;
    let limit = |hard| DimensionLimit {
        soft: None,
        hard: Some(hard),
    };
    let mut config = crate::Config::default();
    let mut tenant = BudgetSpec {
        limits: BTreeMap::from([(ATTEMPTS.to_string(), limit(100))]),
        ..BudgetSpec::default()
    };
    tenant.reset_every_ms = Some(60_000);
    config.budgets = BTreeMap::from([(
        "default".to_string(),
        BTreeMap::from([("quota".to_string(), tenant)]),
    )]);
    let mut engine = Engine::new(config);
    let w = WorkerId::new("w");
    let reg = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 4,
    };
    engine.apply(0, Input::worker(&w, InstanceId::new(1), reg));
    let mut spec = JobSpec::new("j", vec![TaskSpec::new("a"), TaskSpec::new("b")]);
    let own = BudgetSpec {
        limits: BTreeMap::from([(ATTEMPTS.to_string(), limit(1))]),
        ..BudgetSpec::default()
    };
    spec.budgets.insert("own".into(), own);
    engine.apply(0, Input::Client(ClientCommand::SubmitJob(spec)));
    let ask = WorkerCommand::RequestWork { credits: 2 };
    engine.apply(1, Input::worker(&w, InstanceId::new(1), ask));
    let state = engine.state;
    assert_eq!(check(&state), Ok(()));
    assert_eq!(state.budgets.len(), 2, "the job's and the tenant's");
    state
}

fn job_budget(state: &mut State) -> &mut crate::state::BudgetUse {
    let key = (
        crate::budget_spec::BudgetOwner::Job(crate::JobId(1)),
        "own".to_string(),
    );
    state.budgets.get_mut(&key).expect("the job's budget use")
}

#[test]
fn a_budget_past_its_hard_limit_not_marked_exhausted_is_caught() {
    let mut state = with_budgets();
    job_budget(&mut state).exhausted = None;
    caught(&state, InvariantKind::Limit, "not what its limits say");
}

#[test]
fn a_budget_use_nobody_declares_is_caught() {
    let mut state = with_budgets();
    let stray = job_budget(&mut state).clone();
    let key = (
        crate::budget_spec::BudgetOwner::Tenant("nobody".into()),
        "x".to_string(),
    );
    state.budgets.insert(key, stray);
    caught(
        &state,
        InvariantKind::Reference,
        "which it does not declare",
    );
}

#[test]
fn a_tenant_period_without_its_reset_timer_is_caught() {
    let mut state = with_budgets();
    let key = (
        crate::budget_spec::BudgetOwner::Tenant("default".into()),
        "quota".to_string(),
    );
    let u = state.budgets.get_mut(&key).expect("the tenant's use");
    u.resets_at = Some(120_000);
    caught(
        &state,
        InvariantKind::Timer,
        "resets at 120000 without a timer",
    );
}

#[test]
fn a_tenant_stopped_by_no_budget_is_caught() {
    let mut state = with_budgets();
    state.tenants[0].budget_stopped = true;
    caught(&state, InvariantKind::Count, "tenant default is stopped");
}

#[test]
fn a_job_stopped_by_a_budget_it_has_not_used_up_is_caught() {
    let mut state = with_budgets();
    job_budget(&mut state).used.clear();
    job_budget(&mut state).exhausted = None;
    caught(
        &state,
        InvariantKind::Reference,
        "which is not its exhausted budget",
    );
}

#[test]
fn a_use_of_a_dimension_its_budget_does_not_limit_is_caught() {
    let mut state = with_budgets();
    job_budget(&mut state).used.insert("tokens".into(), 1);
    caught(&state, InvariantKind::Limit, "not what its limits say");
}

#[test]
fn a_warning_for_a_soft_limit_not_reached_is_caught() {
    let mut state = with_budgets();
    job_budget(&mut state).warned.insert("attempts".into());
    caught(&state, InvariantKind::Limit, "not what its limits say");
}

#[test]
fn an_exhausted_mark_on_a_dimension_under_its_limit_is_caught() {
    let mut state = with_budgets();
    let u = job_budget(&mut state);
    u.used.insert(crate::budget_spec::ATTEMPTS.into(), 0);
    caught(&state, InvariantKind::Limit, "not what its limits say");
}

/// The running task "a" of job "j", leased by w1.
const RUNNING: TaskId = TaskId(1);

#[test]
fn an_attempt_timeout_without_its_timer_is_caught() {
    let mut state = busy();
    let Some(crate::state::TaskState::Running(lease)) =
        state.tasks.get_mut(&RUNNING).map(|t| &mut t.state)
    else {
        panic!("task a runs");
    };
    lease.timeout_at = Some(9_000);
    caught(&state, InvariantKind::Timer, "AttemptTimeout");
}

#[test]
fn a_suspension_timeout_without_its_timer_is_caught() {
    let mut engine = Engine::restore(&crate::digest::snapshot(&busy())).expect("restores");
    let t = engine.state.tasks.get(&RUNNING).expect("task a");
    let fence = crate::Fence {
        task: RUNNING,
        attempt: t.attempt,
        epoch: t.epoch,
    };
    let suspend = WorkerCommand::Suspend {
        fence,
        waitpoint: "wp".into(),
        timeout_ms: Some(100),
        on_timeout: crate::SuspendTimeout::Fail,
    };
    let w = WorkerId::new("w1");
    let out = engine.apply(2, Input::worker(&w, InstanceId::new(1), suspend));
    assert!(matches!(out.reply, Some(Ok(_))), "{out:?}");
    assert_eq!(check(&engine.state), Ok(()));
    let timer = crate::timers::Timer::SuspendTimeout(RUNNING);
    engine.state.timers.disarm(102, timer);
    caught(&engine.state, InvariantKind::Timer, "SuspendTimeout");
}

#[test]
fn an_upstream_task_its_group_does_not_count_is_caught() {
    let mut state = busy();
    // Task "b" (t2) of job "j" names "a" (t1) upstream without a group counting it.
    let b = state.tasks.get_mut(&TaskId(2)).expect("task b");
    b.upstream.push(RUNNING);
    caught(
        &state,
        InvariantKind::Reference,
        "lists 1 upstream tasks, its group counts 0",
    );
}

#[test]
fn a_capability_set_blocking_a_task_that_waits_for_its_upstream_is_caught() {
    use crate::{ClientCommand, Config, GroupKind, JobSpec, TaskSpec};
    let mut e = Engine::new(Config::default());
    let spec = JobSpec::new(
        "j",
        vec![
            TaskSpec::new("a"),
            TaskSpec::new("gpu").requires(&["gpu"]),
            TaskSpec::new("later")
                .requires(&["gpu"])
                .after(GroupKind::AllOf, &["a"]),
        ],
    );
    e.apply(0, Input::Client(ClientCommand::SubmitJob(spec)));
    assert_eq!(check(&e.state), Ok(()));
    // "later" holds the same capability set as the blocked "gpu" but waits for "a".
    let later = TaskId(3);
    let set = e.state.tasks.get(&later).expect("task later").capset;
    let blocked = &mut e.state.names.capsets[set.0 as usize].blocked;
    assert_eq!(blocked.len(), 1, "only \"gpu\" is blocked");
    blocked.insert(later);
    caught(
        &e.state,
        InvariantKind::Capability,
        "blocks t3, which is not blocked on it",
    );
}

#[test]
fn a_job_miscounting_its_output_bytes_is_caught() {
    let mut state = busy();
    let job = state.jobs.values_mut().next().expect("a job");
    job.output_bytes += 5;
    caught(
        &state,
        InvariantKind::Count,
        "output bytes, its tasks hold 0",
    );
}

#[test]
fn more_live_jobs_than_the_limit_is_caught() {
    let mut state = busy();
    state.config.limits.max_live_jobs = 1;
    caught(&state, InvariantKind::Limit, "2 held, over max_live_jobs 1");
}

#[test]
fn a_job_deadline_without_its_timer_is_caught() {
    let mut state = busy();
    let job = state.jobs.values_mut().next().expect("a job");
    job.deadline_at = Some(50_000);
    caught(&state, InvariantKind::Timer, "JobDeadline");
}

#[test]
fn a_lease_past_its_expiry_is_caught() {
    let mut state = busy();
    state.now = 1_000_000;
    caught(&state, InvariantKind::Timer, "expired at");
}

#[test]
fn an_attempt_history_out_of_step_with_the_task_is_caught() {
    let mut state = busy();
    let a = state.tasks.get_mut(&RUNNING).expect("task a");
    a.epoch += 1;
    caught(
        &state,
        InvariantKind::History,
        "differs from its last attempt's",
    );
}

#[test]
fn the_engine_reports_what_the_check_finds() {
    let mut engine = Engine::restore(&crate::digest::snapshot(&busy())).expect("restores");
    assert_eq!(engine.check_invariants(), Ok(()));
    engine.state.now = 1_000_000;
    let kind = engine.check_invariants().map_err(|v| v.kind);
    assert_eq!(kind, Err(InvariantKind::Timer));
}

/// `busy()` with worker "w1" waiting for a second task it has room for, which dispatch
/// never offered it: task "c" is ready and needs nothing.
fn left_waiting() -> State {
    let mut state = busy();
    let w = WorkerId::new("w1");
    if let Some(worker) = state.workers.get_mut(&w) {
        worker.max_concurrency = 2;
        worker.credits = 1;
    }
    state.demand.insert(w);
    state
}

#[test]
fn a_worker_left_waiting_beside_a_task_it_could_take_is_caught() {
    caught(&left_waiting(), InvariantKind::Dispatch, "worker w1 waits");
}

#[test]
fn a_restored_engine_dispatches_to_every_waiting_worker_on_its_first_input() {
    let bytes = crate::digest::snapshot(&left_waiting());
    let mut e = Engine::restore(&bytes).expect("dispatch is not a property of the bytes");
    let out = e.apply(2, Input::Tick);
    let offered: Vec<_> = out
        .effects
        .iter()
        .filter_map(|e| match e {
            crate::Effect::GrantOffered { task, worker, .. } => Some((*task, worker.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(offered, [(QUEUED, WorkerId::new("w1"))]);
    assert_eq!(e.check_invariants(), Ok(()));
}
