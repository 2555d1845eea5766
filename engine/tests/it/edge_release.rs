//! When a streaming consumer may run: only once every producer it reads has started
//! and its own dependency group is met, with a grant naming the producers it reads;
//! and how it ends when a producer fails while it still waits: by its group's policy.

use keel_engine::*;
use keel_engine_harness::{config, Harness};

fn reads(from: &str) -> StreamEdge {
    StreamEdge {
        from: from.into(),
        policy: EdgePolicy::Fifo,
    }
}

/// The producer keys the grant offered for `task` among `effects` names.
fn streams_offered(effects: &[Effect], task: TaskId) -> Vec<String> {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::GrantOffered {
                task: t, streams, ..
            } if *t == task => Some(streams.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no grant for {task} in {effects:?}"))
}

#[test]
fn a_consumer_of_two_producers_waits_for_both_and_its_grant_names_them_in_spec_order() {
    let mut h = Harness::new(config());
    h.register("pw", 1, &["p"], 1).unwrap();
    h.register("qw", 1, &["q"], 1).unwrap();
    h.register("cw", 1, &["c"], 1).unwrap();
    let mut c = TaskSpec::new("c").requires(&["c"]);
    c.stream_from = vec![reads("q"), reads("p")];
    let p = TaskSpec::new("p").requires(&["p"]);
    let q = TaskSpec::new("q").requires(&["q"]);
    let (_, p) = h.submit(JobSpec::new("two", vec![p, q, c])).unwrap();
    let (q, c) = (TaskId::nth_after(p, 1), TaskId::nth_after(p, 2));

    assert_eq!(h.take("pw", 1).task, p);
    assert_eq!(
        h.task(c).status,
        TaskStatus::Waiting,
        "one producer of two has started"
    );
    assert_eq!(h.take("qw", 1).task, q);
    assert_eq!(h.task(c).status, TaskStatus::Queued);

    let out = h.worker("cw", 1, WorkerCommand::RequestWork { credits: 1 });
    assert_eq!(streams_offered(&out.effects, c), ["q", "p"]);
    h.check_replay();
}

#[test]
fn a_consumer_held_by_its_group_stays_waiting_and_ends_by_its_policy_with_its_producer() {
    let mut h = Harness::new(config());
    h.register("pw", 1, &["p"], 1).unwrap();
    let mut c = TaskSpec::new("c").after(GroupKind::AllOf, &["gate"]);
    c.stream_from = vec![reads("p")];
    if let Some(d) = c.deps.as_mut() {
        d.on_unsatisfied = UnsatisfiedPolicy::Cancel;
    }
    let mut p = TaskSpec::new("p").requires(&["p"]);
    p.retry.max_attempts = 1;
    let gate = TaskSpec::new("gate").requires(&["gate"]);
    let (job, gate) = h.submit(JobSpec::new("held", vec![gate, p, c])).unwrap();
    let (p, c) = (TaskId::nth_after(gate, 1), TaskId::nth_after(gate, 2));

    let pf = h.take("pw", 1);
    assert_eq!(pf.task, p);
    assert_eq!(
        h.task(c).status,
        TaskStatus::Waiting,
        "its producer started, but the gate it depends on has not finished"
    );
    h.fail("pw", 1, pf, true);
    assert_eq!(
        h.task(c).status,
        TaskStatus::Done(TaskOutcome::Cancelled {
            reason: EndReason::DependencyUnsatisfied
        }),
        "the consumer's group says cancel, not the default skip"
    );
    // The job ends, failed, once the gate it still runs is done.
    assert_eq!(h.job_outcome(job), None);
    h.register("gw", 1, &["gate"], 1).unwrap();
    let gf = h.take("gw", 1);
    assert_eq!(gf.task, gate);
    h.complete("gw", 1, gf);
    assert_eq!(h.job_outcome(job), Some(JobOutcome::Failed));
    h.check_replay();
}
