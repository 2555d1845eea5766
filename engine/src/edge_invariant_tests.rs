//! The mirrored edge lists: each way one list can disagree with the other is caught.

use crate::ids::TaskId;
use crate::input::{ClientCommand, Input};
use crate::invariant_checks_tests::caught;
use crate::invariants::{check, InvariantKind};
use crate::spec::{GroupKind, JobSpec, TaskSpec};
use crate::state::State;
use crate::Engine;

/// A job whose first task "a" fans out to "b" and "c", as a consistent state.
fn fan_out() -> State {
    let mut e = Engine::new(crate::Config::default());
    let tasks = ["b", "c"].map(|n| TaskSpec::new(n).after(GroupKind::AllOf, &["a"]));
    let job = JobSpec::new("fan", [vec![TaskSpec::new("a")], tasks.to_vec()].concat());
    e.apply(0, Input::Client(ClientCommand::SubmitJob(job)));
    assert_eq!(check(&e.state), Ok(()));
    e.state
}

#[test]
fn a_downstream_list_out_of_task_order_is_caught() {
    let mut state = fan_out();
    state
        .tasks
        .get_mut(&TaskId(1))
        .expect("a")
        .downstream
        .reverse();
    caught(
        &state,
        InvariantKind::Reference,
        "lists downstream [t3, t2]",
    );
}

#[test]
fn an_upstream_edge_missing_from_the_downstream_list_is_caught() {
    let mut state = fan_out();
    state.tasks.get_mut(&TaskId(1)).expect("a").downstream.pop();
    caught(
        &state,
        InvariantKind::Reference,
        "naming it upstream are [t2, t3]",
    );
}

#[test]
fn an_upstream_task_outside_the_job_is_caught() {
    let mut state = fan_out();
    state.tasks.get_mut(&TaskId(3)).expect("c").upstream[0] = TaskId(99);
    state.tasks.get_mut(&TaskId(1)).expect("a").downstream.pop();
    caught(&state, InvariantKind::Reference, "names upstream t99");
}

#[test]
fn an_upstream_task_that_is_gone_is_caught() {
    let mut state = fan_out();
    state.tasks.remove(&TaskId(2));
    state.tasks.get_mut(&TaskId(3)).expect("c").upstream[0] = TaskId(2);
    state
        .tasks
        .get_mut(&TaskId(1))
        .expect("a")
        .downstream
        .clear();
    caught(&state, InvariantKind::Reference, "t3 names upstream t2");
}

#[test]
fn jobs_whose_task_ranges_overlap_are_caught() {
    let mut state = fan_out();
    let job = JobSpec::new("next", vec![TaskSpec::new("d")]);
    let mut engine = Engine { state };
    engine.apply(0, Input::Client(ClientCommand::SubmitJob(job)));
    state = engine.state;
    assert_eq!(check(&state), Ok(()));
    let second = state.jobs.values_mut().nth(1).expect("the second job");
    second.first_task = TaskId(3);
    caught(
        &state,
        InvariantKind::Reference,
        "overlapping an earlier job's (up to t3)",
    );
}
