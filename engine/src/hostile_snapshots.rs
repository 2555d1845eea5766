//! Snapshots read from disk are untrusted: each state below decodes, and each once
//! passed `restore` and then panicked the engine (an underflow, a division by zero, an
//! overflowing id or a runaway allocation) on a later input. `restore` now refuses
//! them, and the engine takes care at each site as well.

use crate::digest;
use crate::ids::{TaskId, WorkerId};
use crate::input::{ClientCommand, Input, WorkerCommand};
use crate::output::Effect;
use crate::spec::{JobSpec, Payload, TaskSpec};
use crate::state::{State, TaskState};
use crate::{Config, Engine, InstanceId, RestoreError};

/// A job of two tasks ("a" running on w1, "b" needing `gpu` and blocked) and one of a
/// single queued task.
pub(crate) fn busy() -> State {
    let mut e = Engine::new(Config::default());
    let w = WorkerId::new("w1");
    let reg = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 1,
    };
    e.apply(0, Input::worker(&w, InstanceId(1), reg));
    let mut a = TaskSpec::new("a");
    a.payload = Payload::from("payload");
    let job = JobSpec::new("j", vec![a, TaskSpec::new("b").requires(&["gpu"])]);
    e.apply(0, Input::Client(ClientCommand::SubmitJob(job)));
    let job = JobSpec::new("k", vec![TaskSpec::new("c")]);
    e.apply(0, Input::Client(ClientCommand::SubmitJob(job)));
    let ask = WorkerCommand::RequestWork { credits: 1 };
    let out = e.apply(1, Input::worker(&w, InstanceId(1), ask));
    let Some(Effect::GrantOffered { grant, .. }) = out.effects.first().cloned() else {
        panic!("no grant: {out:?}");
    };
    let accept = WorkerCommand::AcceptGrant { grant };
    e.apply(1, Input::worker(&w, InstanceId(1), accept));
    assert_eq!(e.check_invariants(), Ok(()));
    e.state
}

fn refused(state: &State, what: &str) {
    match Engine::restore(&digest::snapshot(state)) {
        Err(RestoreError::Inconsistent(_)) => {}
        other => panic!("{what}: restore answered {other:?}"),
    }
}

#[test]
fn the_untouched_state_restores() {
    assert!(Engine::restore(&digest::snapshot(&busy())).is_ok());
}

#[test]
fn counters_the_engine_decrements_must_match_the_tasks() {
    // Finishing the job would subtract from a tenant with no job in flight.
    let mut state = busy();
    state.tenants[0].jobs_in_flight = 0;
    refused(&state, "jobs in flight");
    let mut state = busy();
    state.stored_bytes -= 1;
    refused(&state, "stored bytes");
    let mut state = busy();
    let lane = state.jobs.values().next().map_or(0, |j| j.lane);
    state.names.lanes.release(lane);
    refused(&state, "lane holders");
}

#[test]
fn a_zero_tenant_weight_is_refused() {
    // Fair share divides by the weight.
    let mut state = busy();
    state.tenants[0].weight = 0;
    refused(&state, "weight");
}

#[test]
fn ids_at_the_end_of_u64_are_refused() {
    // `next_grant += 1` on the next offer, `epoch += 1` on the next accept.
    let mut state = busy();
    state.next_grant = u64::MAX;
    refused(&state, "next grant");
    let mut state = busy();
    if let Some(t) = state.tasks.get_mut(&TaskId(3)) {
        t.epoch = u64::MAX;
    }
    refused(&state, "epoch");
}

#[test]
fn a_task_table_that_does_not_end_at_the_next_task_id_is_refused() {
    // The next submit would allocate a slot per id up to `next_task`.
    let mut state = busy();
    state.next_task = 1 << 40;
    refused(&state, "next task far past the table");
    // Iterating the table computed `base + index` past `u64::MAX`.
    let mut state = busy();
    state.tasks.rebase(u64::MAX - 1);
    refused(&state, "table at the end of u64");
}

#[test]
fn a_group_needing_more_than_its_upstream_is_refused() {
    // `total - needed` underflowed when the group was checked.
    let mut state = busy();
    state.tasks.get_mut(&TaskId(1)).expect("task a").group = Some(crate::state::Group {
        kind: crate::spec::GroupKind::AllOf,
        total: 1,
        needed: 2,
        succeeded: 0,
        unsucceeded: 0,
        on_unsatisfied: crate::spec::UnsatisfiedPolicy::Skip,
    });
    refused(&state, "group");
}

#[test]
fn a_blocked_set_holding_a_running_task_is_refused() {
    // A worker with the capability would have made the running task ready again.
    let mut state = busy();
    let running = TaskId(1);
    assert!(matches!(
        state.tasks.get(&running).map(|t| &t.state),
        Some(TaskState::Running(_))
    ));
    state.names.capsets[1].blocked.insert(running);
    refused(&state, "blocked set");
}
