//! The transitions assert their own pre- and postconditions: a counter is positive
//! before it is decremented, a grant is accepted only for the task offered under it. A
//! bug that breaks one stops the engine at the transition that found it (and `keel
//! serve` names the log offset) instead of saturating into a state that is wrong later.
//! Each test below breaks one precondition by hand and watches the transition refuse.

use crate::hostile_snapshots::busy;
use crate::ids::{JobId, WorkerId};
use crate::input::{ClientCommand, Input, WorkerCommand};
use crate::output::Effect;
use crate::spec::{JobSpec, TaskSpec};
use crate::state::{State, TaskState};
use crate::{Config, Engine, InstanceId};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Applies `input` to an engine holding `state` and returns the panic message.
fn refusal(state: State, input: Input) -> String {
    let mut engine = Engine { state };
    let panic = catch_unwind(AssertUnwindSafe(|| engine.apply(5, input)))
        .expect_err("the transition must assert its precondition");
    match (panic.downcast_ref::<String>(), panic.downcast_ref::<&str>()) {
        (Some(text), _) => text.clone(),
        (None, Some(text)) => (*text).to_string(),
        (None, None) => String::from("<no message>"),
    }
}

fn cancel(job: u64) -> Input {
    Input::Client(ClientCommand::CancelJob { job: JobId(job) })
}

/// The id of the job named `name` in `state`.
fn job_named(state: &State, name: &str) -> u64 {
    let id = state
        .jobs
        .iter()
        .find(|(_, j)| j.name == name)
        .map(|(id, _)| *id)
        .expect("the job exists");
    id.0
}

#[test]
fn ending_a_job_needs_it_counted_in_flight() {
    let mut state = busy();
    let k = job_named(&state, "k");
    state.tenants[0].jobs_in_flight = 0;
    let text = refusal(state, cancel(k));
    assert!(text.contains("was in flight until now"), "{text}");
}

#[test]
fn taking_a_task_off_the_queue_needs_it_counted_queued() {
    let mut state = busy();
    let k = job_named(&state, "k");
    if let Some(job) = state.jobs.get_mut(&JobId(k)) {
        job.queued = 0;
    }
    let text = refusal(state, cancel(k));
    assert!(text.contains("is queued, so its job counts it"), "{text}");
}

#[test]
fn freeing_a_slot_needs_the_tenant_to_hold_one() {
    let mut state = busy();
    let j = job_named(&state, "j");
    state.tenants[0].active = 0;
    let text = refusal(state, cancel(j));
    assert!(text.contains("frees a slot it holds"), "{text}");
}

#[test]
fn a_grant_is_accepted_only_for_the_task_offered_under_it() {
    let mut engine = Engine::new(Config::default());
    let w = WorkerId::new("w1");
    let reg = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 1,
    };
    engine.apply(0, Input::worker(&w, InstanceId(1), reg));
    let job = JobSpec::new("j", vec![TaskSpec::new("a")]);
    engine.apply(0, Input::Client(ClientCommand::SubmitJob(job)));
    let ask = WorkerCommand::RequestWork { credits: 1 };
    let out = engine.apply(1, Input::worker(&w, InstanceId(1), ask));
    let Some(Effect::GrantOffered { grant, task, .. }) = out.effects.first().cloned() else {
        panic!("no grant: {out:?}");
    };
    let mut state = engine.state;
    if let Some(t) = state.tasks.get_mut(&task) {
        t.state = TaskState::Waiting;
    }
    let accept = WorkerCommand::AcceptGrant { grant };
    let text = refusal(state, Input::worker(&w, InstanceId(1), accept));
    assert!(text.contains("must be offered under it"), "{text}");
}
