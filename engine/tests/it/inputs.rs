//! What a grant carries besides its task's payload: the committed outputs of the
//! task's upstream tasks by key, in its group's order (absent, never empty, for one
//! that did not succeed), and the payload of the signal that resumed it.

use keel_engine::*;
use keel_engine_harness::{config, rejection, Harness};

/// The grant offered for `task` among `effects`: its id, inputs and signal payload.
fn offer_of(effects: &[Effect], task: TaskId) -> (GrantId, Vec<TaskInput>, Option<Payload>) {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::GrantOffered {
                grant,
                task: t,
                inputs,
                signal,
                ..
            } if *t == task => Some((*grant, inputs.clone(), signal.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no grant for {task} in {effects:?}"))
}

/// Asks for one task on `w` and starts it: its fence, inputs and signal payload.
pub(crate) fn start(
    h: &mut Harness,
    w: &str,
    task: TaskId,
) -> (Fence, Vec<TaskInput>, Option<Payload>) {
    let out = h.worker(w, 1, WorkerCommand::RequestWork { credits: 1 });
    let (grant, inputs, signal) = offer_of(&out.effects, task);
    let fence = h.accept(w, 1, grant).expect("accept");
    (fence, inputs, signal)
}

fn finish(h: &mut Harness, w: &str, fence: Fence, output: &str) {
    let output = Payload::from(output);
    let out = h.worker(w, 1, WorkerCommand::Complete { fence, output });
    assert!(matches!(out.reply, Some(Ok(Accepted::Completed { .. }))));
}

/// Inputs as (key, text) pairs, `None` for an absent one.
fn texts(inputs: &[TaskInput]) -> Vec<(&str, Option<&str>)> {
    inputs
        .iter()
        .map(|i| {
            let text = i
                .output
                .as_ref()
                .map(|p| std::str::from_utf8(&p.0).unwrap());
            (i.key.as_str(), text)
        })
        .collect()
}

fn id(h: &Harness, job: JobId, key: &str) -> TaskId {
    h.engine.task_by_key(job, key).unwrap().unwrap()
}

#[test]
fn a_grant_carries_its_upstream_outputs_in_group_order() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let spec = JobSpec::new(
        "flow",
        vec![
            TaskSpec::new("a"),
            TaskSpec::new("b"),
            TaskSpec::new("sum").after(GroupKind::AllOf, &["b", "a"]),
        ],
    );
    let (job, a) = h.submit(spec).unwrap();
    let (b, sum) = (id(&h, job, "b"), id(&h, job, "sum"));
    let (fa, inputs, signal) = start(&mut h, "w", a);
    assert_eq!((inputs, signal), (vec![], None), "a root has no inputs");
    finish(&mut h, "w", fa, "1");
    let (fb, _, _) = start(&mut h, "w", b);
    // An empty output is an input of zero bytes, not an absent one.
    finish(&mut h, "w", fb, "");
    let (_, inputs, signal) = start(&mut h, "w", sum);
    assert_eq!(texts(&inputs), [("b", Some("")), ("a", Some("1"))]);
    assert_eq!(signal, None);
    h.check_replay();
}

#[test]
fn any_of_and_quorum_groups_carry_only_the_dependencies_that_succeeded() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 4).unwrap();
    let mut failing = TaskSpec::new("failing");
    failing.allow_failure = true;
    let spec = JobSpec::new(
        "groups",
        vec![
            TaskSpec::new("fast"),
            failing,
            TaskSpec::new("slow"),
            TaskSpec::new("any").after(GroupKind::AnyOf, &["failing", "fast", "slow"]),
            TaskSpec::new("two").after(GroupKind::Quorum(2), &["slow", "failing", "fast"]),
        ],
    );
    let (job, fast) = h.submit(spec).unwrap();
    let (failing, slow) = (id(&h, job, "failing"), id(&h, job, "slow"));
    let (any, two) = (id(&h, job, "any"), id(&h, job, "two"));
    let out = h.worker("w", 1, WorkerCommand::RequestWork { credits: 3 });
    let grants: Vec<GrantId> = [fast, failing, slow]
        .iter()
        .map(|t| offer_of(&out.effects, *t).0)
        .collect();
    let fences: Vec<Fence> = grants
        .iter()
        .map(|g| h.accept("w", 1, *g).unwrap())
        .collect();
    let out = h.fail("w", 1, fences[1], true);
    assert!(matches!(out.reply, Some(Ok(Accepted::Failed { .. }))));
    finish(&mut h, "w", fences[0], "fast data");
    // "slow" still runs: absent, like the failed one.
    let (fany, inputs, _) = start(&mut h, "w", any);
    assert_eq!(
        texts(&inputs),
        [
            ("failing", None),
            ("fast", Some("fast data")),
            ("slow", None)
        ]
    );
    finish(&mut h, "w", fany, "");
    finish(&mut h, "w", fences[2], "slow data");
    let (_, inputs, _) = start(&mut h, "w", two);
    assert_eq!(
        texts(&inputs),
        [
            ("slow", Some("slow data")),
            ("failing", None),
            ("fast", Some("fast data"))
        ]
    );
    h.check_replay();
}

#[test]
fn a_skipped_dependency_is_absent() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let spec = JobSpec::new(
        "skips",
        vec![
            TaskSpec::new("broken"),
            TaskSpec::new("after_broken").after(GroupKind::AllOf, &["broken"]),
            TaskSpec::new("ok"),
            TaskSpec::new("last").after(GroupKind::AnyOf, &["after_broken", "ok"]),
        ],
    );
    let (job, broken) = h.submit(spec).unwrap();
    let (fence, _, _) = start(&mut h, "w", broken);
    h.fail("w", 1, fence, true);
    let skipped = id(&h, job, "after_broken");
    assert_eq!(h.task(skipped).status.label(), "skipped");
    let ok = id(&h, job, "ok");
    let (fence, _, _) = start(&mut h, "w", ok);
    finish(&mut h, "w", fence, "ok data");
    let last = id(&h, job, "last");
    let (_, inputs, _) = start(&mut h, "w", last);
    assert_eq!(
        texts(&inputs),
        [("after_broken", None), ("ok", Some("ok data"))]
    );
}

pub(crate) fn suspend(h: &mut Harness, fence: Fence, timeout_ms: Option<u64>, on: SuspendTimeout) {
    let cmd = WorkerCommand::Suspend {
        fence,
        waitpoint: "approval".into(),
        timeout_ms,
        on_timeout: on,
    };
    let out = h.worker("w", 1, cmd);
    assert!(matches!(out.reply, Some(Ok(Accepted::Suspended { .. }))));
}

pub(crate) fn signal(h: &mut Harness, task: TaskId, key: &str, payload: &str) -> Outputs {
    h.apply(Input::Client(ClientCommand::Signal {
        task,
        waitpoint: "approval".into(),
        idempotency_key: key.into(),
        payload: Payload::from(payload),
    }))
}

#[test]
fn a_resumed_attempt_carries_the_payload_of_the_signal_that_resumed_it() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let (_, t) = h
        .submit(JobSpec::new("wait", vec![TaskSpec::new("t")]))
        .unwrap();
    let (fence, _, signal_before) = start(&mut h, "w", t);
    assert_eq!(signal_before, None);
    suspend(&mut h, fence, None, SuspendTimeout::Fail);
    signal(&mut h, t, "k1", "approved by ada");
    let (_, _, carried) = start(&mut h, "w", t);
    assert_eq!(carried, Some(Payload::from("approved by ada")));
    // A repeated signal is a duplicate and changes nothing.
    let again = signal(&mut h, t, "k1", "other");
    assert!(matches!(
        again.reply,
        Some(Ok(Accepted::Signalled {
            duplicate: true,
            ..
        }))
    ));
    // The resumed attempt's worker dies: the next attempt still resumes from it.
    h.tick(h.now + config().liveness_timeout_ms + 1);
    h.register("w", 2, &[], 1).unwrap();
    let out = h.worker("w", 2, WorkerCommand::RequestWork { credits: 1 });
    let (_, _, carried) = offer_of(&out.effects, t);
    assert_eq!(carried, Some(Payload::from("approved by ada")));
    h.check_replay();
}

#[test]
fn a_second_signal_replaces_the_first_and_a_timeout_resume_carries_none() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let (_, t) = h
        .submit(JobSpec::new("wait", vec![TaskSpec::new("t")]))
        .unwrap();
    let (fence, _, _) = start(&mut h, "w", t);
    suspend(&mut h, fence, None, SuspendTimeout::Fail);
    signal(&mut h, t, "first", "one");
    let (fence, _, _) = start(&mut h, "w", t);
    suspend(&mut h, fence, None, SuspendTimeout::Fail);
    signal(&mut h, t, "second", "two");
    let (fence, _, carried) = start(&mut h, "w", t);
    assert_eq!(carried, Some(Payload::from("two")));
    suspend(&mut h, fence, Some(100), SuspendTimeout::Resume);
    h.tick(h.now + 100);
    let (_, _, carried) = start(&mut h, "w", t);
    assert_eq!(carried, None, "a resume by timeout carries no signal");
    h.check_replay();
}

#[test]
fn a_zombie_output_never_reaches_a_downstream_grant() {
    let mut h = Harness::new(config());
    h.register("zombie", 1, &[], 1).unwrap();
    let spec = JobSpec::new(
        "fenced",
        vec![
            TaskSpec::new("a"),
            TaskSpec::new("b").after(GroupKind::AllOf, &["a"]),
        ],
    );
    let (job, a) = h.submit(spec).unwrap();
    let (stale, _, _) = start(&mut h, "zombie", a);
    h.tick(h.now + config().liveness_timeout_ms + 1);
    h.register("w", 1, &[], 1).unwrap();
    let (fence, _, _) = start(&mut h, "w", a);
    assert!(fence.epoch > stale.epoch);
    finish(&mut h, "w", fence, "winner");
    // The zombie comes back under a new instance and completes with its old fence.
    h.register("zombie", 2, &[], 1).unwrap();
    let late = h.worker(
        "zombie",
        2,
        WorkerCommand::Complete {
            fence: stale,
            output: Payload::from("zombie data"),
        },
    );
    assert!(rejection(&late).is_fencing());
    let b = id(&h, job, "b");
    let (_, inputs, _) = start(&mut h, "w", b);
    assert_eq!(texts(&inputs), [("a", Some("winner"))]);
}
