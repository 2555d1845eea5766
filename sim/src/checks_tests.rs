//! The history checks against hand-made releases.

use super::*;
use keel_engine::{InstanceId, JobSpec, Payload, TaskSpec, WorkerCommand, WorkerId};

fn checker() -> Checker {
    Checker::new(&[10_000], BTreeMap::new(), &[])
}

#[test]
fn outputs_released_before_their_input_is_durable_are_flagged() {
    let mut c = checker();
    c.released(1, &Input::Tick, None, &[], (4, 4));
    assert!(c.failures.is_empty());
    c.released(1, &Input::Tick, None, &[], (5, 4));
    assert_eq!(c.failures[0].check, Check::UndurableRelease);
}

#[test]
fn a_completion_from_a_fence_that_is_not_the_live_lease_is_flagged() {
    let mut c = checker();
    let w = WorkerId::new("w");
    let submit = Input::Client(ClientCommand::SubmitJob(JobSpec::new(
        "j",
        vec![TaskSpec::new("a")],
    )));
    let admitted = Ok(Accepted::JobSubmitted {
        job: JobId::new(1),
        first_task: TaskId::new(1),
        tasks: 1,
        duplicate: false,
    });
    c.released(0, &submit, Some(&admitted), &[], (1, 1));
    let fence = Fence {
        task: TaskId::new(1),
        attempt: 1,
        epoch: 1,
    };
    let complete = Input::worker(
        &w,
        InstanceId::new(1),
        WorkerCommand::Complete {
            fence,
            output: Payload::from("x"),
        },
    );
    let done = Ok(Accepted::Completed {
        fence,
        duplicate: false,
    });
    c.released(5, &complete, Some(&done), &[], (2, 2));
    assert_eq!(
        c.failures[0].check,
        Check::StaleCompletion,
        "{:?}",
        c.failures
    );
    // The job was acknowledged and has not ended: a recovery must still know it.
    assert_eq!(c.acknowledged_survived(9, |_| true), Ok(()));
    let lost = c.acknowledged_survived(9, |job| job != JobId::new(1));
    assert_eq!(lost.map_err(|f| f.check), Err(Check::LostAcknowledgedInput));
}
