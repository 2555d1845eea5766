//! Jobs as DAGs: admission checks and all-of / any-of / quorum groups.
use keel_engine::*;
use keel_engine_harness::*;

fn submit_err(spec: JobSpec) -> JobError {
    let mut h = Harness::new(config());
    match h.submit(spec) {
        Err(Rejection::InvalidJob(e)) => {
            assert!(h.engine.jobs().is_empty(), "nothing half-admitted");
            e
        }
        other => panic!("expected InvalidJob, got {other:?}"),
    }
}

#[test]
fn invalid_dags_are_rejected_naming_the_tasks() {
    let spec = JobSpec::new(
        "j",
        vec![TaskSpec::new("a").after(GroupKind::AllOf, &["ghost"])],
    );
    assert_eq!(
        submit_err(spec),
        JobError::UnknownDependency {
            task: "a".into(),
            dep: "ghost".into()
        }
    );
    let spec = JobSpec::new("j", tasks(&["a", "a"]));
    assert_eq!(
        submit_err(spec),
        JobError::DuplicateTask { key: "a".into() }
    );
    let spec = JobSpec::new(
        "j",
        vec![
            TaskSpec::new("a").after(GroupKind::AllOf, &["c"]),
            TaskSpec::new("b").after(GroupKind::AllOf, &["a"]),
            TaskSpec::new("c").after(GroupKind::AllOf, &["b"]),
            TaskSpec::new("d"),
        ],
    );
    let JobError::Cycle { cycle } = submit_err(spec) else {
        panic!()
    };
    assert_eq!(cycle.len(), 4);
    assert_eq!(cycle.first(), cycle.last());
    for k in ["a", "b", "c"] {
        assert!(cycle.contains(&k.to_string()), "{cycle:?}");
    }
    let spec = JobSpec::new(
        "j",
        vec![TaskSpec::new("a").after(GroupKind::AllOf, &["a"])],
    );
    assert_eq!(
        submit_err(spec),
        JobError::Cycle {
            cycle: vec!["a".into(), "a".into()]
        }
    );
    let spec = JobSpec::new(
        "j",
        vec![
            TaskSpec::new("a"),
            TaskSpec::new("q").after(GroupKind::Quorum(2), &["a"]),
        ],
    );
    assert_eq!(
        submit_err(spec),
        JobError::QuorumOutOfRange {
            task: "q".into(),
            k: 2,
            n: 1
        }
    );
    let spec = JobSpec::new(
        "j",
        vec![
            TaskSpec::new("a"),
            TaskSpec::new("q").after(GroupKind::Quorum(0), &["a"]),
        ],
    );
    assert!(matches!(
        submit_err(spec),
        JobError::QuorumOutOfRange { k: 0, .. }
    ));
    let spec = JobSpec::new("j", vec![TaskSpec::new("t").requires(&["bad token"])]);
    assert!(matches!(
        submit_err(spec),
        JobError::Capability {
            why: CapabilityIssue::Whitespace,
            ..
        }
    ));
    assert_eq!(submit_err(JobSpec::new("j", vec![])), JobError::Empty);
}

#[test]
fn duplicate_submission_is_answered_with_the_same_job() {
    let mut h = Harness::new(config());
    let (j, t) = h.submit(job("etl", &["a"])).unwrap();
    let out = h.apply(Input::Client(ClientCommand::SubmitJob(job("etl", &["a"]))));
    assert_eq!(
        accepted(&out),
        &Accepted::JobSubmitted {
            job: j,
            first_task: t,
            tasks: 1,
            duplicate: true
        }
    );
    assert_eq!(h.engine.jobs().len(), 1);
    let conflict = h.submit(job("etl", &["a", "b"]));
    assert_eq!(
        conflict,
        Err(Rejection::JobNameConflict {
            name: "etl".into(),
            existing: j
        })
    );
}

/// Runs every task offered to the worker, failing the listed keys, until idle.
fn drive(h: &mut Harness, fail: &[&str]) -> Vec<String> {
    let mut order = Vec::new();
    let mut pending = std::collections::VecDeque::from(h.request("w", 1, 8));
    while let Some((g, t)) = pending.pop_front() {
        let key = h.task(t).key;
        let f = h.accept("w", 1, g).unwrap();
        let out = if fail.contains(&key.as_str()) {
            h.fail("w", 1, f, true)
        } else {
            h.complete("w", 1, f)
        };
        pending.extend(grants_for(&out.effects, "w"));
        order.push(key);
        if pending.is_empty() {
            pending.extend(h.request("w", 1, 8));
        }
    }
    order
}

fn diamond(kind: GroupKind, policy: UnsatisfiedPolicy) -> JobSpec {
    let mut sink = TaskSpec::new("sink").after(kind, &["a", "b", "c"]);
    if let Some(d) = sink.deps.as_mut() {
        d.on_unsatisfied = policy;
    }
    let mut up: Vec<TaskSpec> = ["a", "b", "c"].iter().map(|k| TaskSpec::new(*k)).collect();
    for t in &mut up {
        t.allow_failure = true;
    }
    up.push(sink);
    up.push(TaskSpec::new("after").after(GroupKind::AllOf, &["sink"]));
    JobSpec::new("j", up)
}

fn run(
    kind: GroupKind,
    fail: &[&str],
    policy: UnsatisfiedPolicy,
) -> (Option<JobOutcome>, TaskStatus, Vec<String>) {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 8).unwrap();
    let (j, first) = h.submit(diamond(kind, policy)).unwrap();
    let order = drive(&mut h, fail);
    let sink = h.task(TaskId::new(first.get() + 3)).status;
    h.check_replay();
    (h.job_outcome(j), sink, order)
}

#[test]
fn all_of_waits_for_every_upstream_and_skips_on_failure() {
    let (o, sink, order) = run(GroupKind::AllOf, &[], UnsatisfiedPolicy::Skip);
    assert_eq!(o, Some(JobOutcome::Succeeded));
    assert_eq!(sink, TaskStatus::Done(TaskOutcome::Succeeded));
    assert_eq!(order[3..], ["sink".to_string(), "after".to_string()]);
    let (o, sink, order) = run(GroupKind::AllOf, &["b"], UnsatisfiedPolicy::Skip);
    assert_eq!(sink, TaskStatus::Done(TaskOutcome::Skipped));
    assert!(
        !order.contains(&"after".to_string()),
        "skips propagate downstream"
    );
    assert_eq!(
        o,
        Some(JobOutcome::Succeeded),
        "b's failure is allowed and skips are not failures"
    );
}

#[test]
fn any_of_runs_after_the_first_success() {
    let (o, sink, _) = run(GroupKind::AnyOf, &["a", "b"], UnsatisfiedPolicy::Skip);
    assert_eq!(sink, TaskStatus::Done(TaskOutcome::Succeeded));
    assert_eq!(o, Some(JobOutcome::Succeeded));
    let (_, sink, _) = run(GroupKind::AnyOf, &["a", "b", "c"], UnsatisfiedPolicy::Skip);
    assert_eq!(sink, TaskStatus::Done(TaskOutcome::Skipped));
}

#[test]
fn quorum_needs_k_successes_and_cancels_by_policy() {
    let (_, sink, _) = run(GroupKind::Quorum(2), &["c"], UnsatisfiedPolicy::Cancel);
    assert_eq!(sink, TaskStatus::Done(TaskOutcome::Succeeded));
    let (o, sink, _) = run(GroupKind::Quorum(2), &["b", "c"], UnsatisfiedPolicy::Cancel);
    assert_eq!(
        sink,
        TaskStatus::Done(TaskOutcome::Cancelled {
            reason: EndReason::DependencyUnsatisfied
        })
    );
    assert_eq!(
        o,
        Some(JobOutcome::Failed),
        "a cancelled task fails the job"
    );
}

#[test]
fn quorum_releases_the_downstream_before_stragglers_finish() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 8).unwrap();
    let (_, first) = h
        .submit(diamond(GroupKind::Quorum(2), UnsatisfiedPolicy::Skip))
        .unwrap();
    let g = h.request("w", 1, 3);
    let fa = h.accept("w", 1, g[0].0).unwrap();
    let fb = h.accept("w", 1, g[1].0).unwrap();
    h.complete("w", 1, fa);
    let out = h.complete("w", 1, fb);
    assert!(
        grants_for(&out.effects, "w").is_empty(),
        "all three credits were used"
    );
    assert_eq!(
        h.task(TaskId::new(first.get() + 3)).status,
        TaskStatus::Queued,
        "ready while c still runs"
    );
    assert_eq!(
        h.task(TaskId::new(first.get() + 2)).status,
        TaskStatus::Offered
    );
}

#[test]
fn zero_caps_deadlines_and_timeouts_are_refused() {
    let mut spec = job("j", &["a"]);
    spec.max_concurrency = Some(0);
    assert!(
        matches!(submit_err(spec), JobError::BadField { field, .. } if field == "max_concurrency")
    );
    let mut spec = job("j", &["a"]);
    spec.deadline_ms = Some(0);
    assert!(matches!(submit_err(spec), JobError::BadField { field, .. } if field == "deadline_ms"));
    let mut spec = job("j", &["a"]);
    spec.tasks[0].attempt_timeout_ms = Some(0);
    let e = submit_err(spec);
    assert_eq!(
        e.to_string(),
        "task \"a\" attempt_timeout_ms: must be at least 1"
    );
}

#[test]
fn the_footprint_counts_tasks_and_their_dependency_edges() {
    let mut h = Harness::new(config());
    assert_eq!(h.engine.footprint(), 0);
    let spec = JobSpec::new(
        "j",
        vec![
            TaskSpec::new("a"),
            TaskSpec::new("b"),
            TaskSpec::new("c").after(GroupKind::AllOf, &["a", "b"]),
            TaskSpec::new("d").after(GroupKind::AnyOf, &["c"]),
        ],
    );
    h.submit(spec).unwrap();
    assert_eq!(h.engine.footprint(), 4 + 3);
}
