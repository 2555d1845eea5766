use super::*;
use crate::*;

fn submit(engine: &mut Engine, spec: JobSpec) -> (JobId, bool) {
    match engine
        .apply(1, Input::Client(ClientCommand::SubmitJob(spec)))
        .reply
    {
        Some(Ok(Accepted::JobSubmitted { job, duplicate, .. })) => (job, duplicate),
        other => panic!("submit: {other:?}"),
    }
}

fn offers(out: &Outputs) -> Vec<(GrantId, TaskId)> {
    out.effects
        .iter()
        .filter_map(|e| match e {
            Effect::GrantOffered { grant, task, .. } => Some((*grant, *task)),
            _ => None,
        })
        .collect()
}

/// Runs every offered task on one worker, failing (permanently) those in `fail`,
/// until nothing more is offered.
fn run_all(engine: &mut Engine, fail: &[&str]) {
    let w = WorkerId::new("w");
    let send =
        |engine: &mut Engine, command| engine.apply(2, Input::worker(&w, InstanceId(1), command));
    let register = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 8,
    };
    send(engine, register);
    let mut pending = offers(&send(engine, WorkerCommand::RequestWork { credits: 100 }));
    let mut steps = 0;
    while let Some((grant, task)) = pending.pop() {
        steps += 1;
        assert!(steps < 100, "the job kept offering work");
        let fence = match send(engine, WorkerCommand::AcceptGrant { grant }).reply {
            Some(Ok(Accepted::LeaseStarted { fence, .. })) => fence,
            other => panic!("accept: {other:?}"),
        };
        let key = engine.describe_task(task).unwrap().key;
        let command = if fail.contains(&key.as_str()) {
            WorkerCommand::Fail {
                fence,
                error: "boom".into(),
                permanent: true,
            }
        } else {
            WorkerCommand::Complete {
                fence,
                output: Payload::default(),
            }
        };
        pending.extend(offers(&send(engine, command)));
    }
}

fn chain_and_quorum() -> JobSpec {
    let mut quorum = TaskSpec::new("publish").after(GroupKind::Quorum(2), &["r1", "r2", "r3"]);
    quorum.retry.max_attempts = 1;
    let mut spec = JobSpec::new(
        "nightly",
        vec![
            TaskSpec::new("extract"),
            TaskSpec::new("load").after(GroupKind::AllOf, &["extract"]),
            TaskSpec::new("report").after(GroupKind::AllOf, &["load"]),
            TaskSpec::new("r1"),
            TaskSpec::new("r2"),
            TaskSpec::new("r3"),
            quorum,
        ],
    );
    for t in &mut spec.tasks {
        t.retry.max_attempts = 1;
    }
    spec
}

#[test]
fn the_admitted_spec_is_rebuilt_from_state() {
    let mut engine = Engine::new(Config::default());
    let mut spec = chain_and_quorum();
    spec.tenant = "acme".into();
    spec.lane = "batch".into();
    spec.priority = 4;
    spec.deadline_ms = Some(60_000);
    spec.max_concurrency = Some(3);
    spec.tasks[0].capabilities = vec!["zeta".into(), "alpha".into()];
    spec.tasks[0].payload = Payload::from("echo hi");
    spec.tasks[1].delay_ms = 250;
    spec.tasks[1].attempt_timeout_ms = Some(9_000);
    spec.tasks[2].priority = Some(-1);
    spec.tasks[2].allow_failure = true;
    spec.tasks[3].estimated_ms = Some(5);
    let (job, _) = submit(&mut engine, spec.clone());

    // The job's priority is its first task's; a task carries its own only where it
    // differs.
    let mut expected = spec;
    for t in &mut expected.tasks {
        t.priority = t.priority.filter(|p| *p != 4);
        t.estimated_ms = None;
        t.capabilities.sort();
    }
    assert_eq!(engine.job_spec(job), Ok(expected));
    assert_eq!(
        engine.job_spec(JobId(99)),
        Err(Rejection::UnknownJob { job: JobId(99) })
    );
}

#[test]
fn a_retry_runs_what_did_not_succeed_and_keeps_what_did_out() {
    let mut engine = Engine::new(Config::default());
    let (job, _) = submit(&mut engine, chain_and_quorum());
    assert_eq!(
        engine.retry_spec(job),
        Err(RetryRefusal::NotFinished { job })
    );
    // load fails, so report is skipped; two of three replicas fail, so publish is
    // skipped too.
    run_all(&mut engine, &["load", "r2", "r3"]);
    let status = engine.describe_job(job).unwrap().status;
    assert_eq!(status.outcome, Some(JobOutcome::Failed));

    let retry = engine.retry_spec(job).unwrap();
    assert_eq!(retry.name, "nightly [retry of job 1]");
    assert_eq!(retried_from(&retry.name), Some(job));
    let keys: Vec<_> = retry.tasks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["load", "report", "r2", "r3", "publish"]);
    let deps = |k: &str| {
        retry
            .tasks
            .iter()
            .find(|t| t.key == k)
            .unwrap()
            .deps
            .clone()
    };
    assert_eq!(
        deps("load"),
        None,
        "extract succeeded: load is ready at once"
    );
    let report = deps("report").unwrap();
    assert_eq!(
        (report.kind, report.upstream),
        (GroupKind::AllOf, vec!["load".into()])
    );
    let publish = deps("publish").unwrap();
    assert_eq!(
        publish.kind,
        GroupKind::AnyOf,
        "one of two more successes needed"
    );
    assert_eq!(publish.upstream, ["r2", "r3"]);

    // Retrying the same job again finds the retry job instead of running it twice.
    let (first, duplicate) = submit(&mut engine, retry.clone());
    assert!(!duplicate);
    let second = engine.retry_spec(job).unwrap();
    let (again, duplicate) = submit(&mut engine, second);
    assert_eq!((again, duplicate), (first, true));
}

#[test]
fn a_job_that_fully_succeeded_has_nothing_to_retry() {
    let mut engine = Engine::new(Config::default());
    let (job, _) = submit(&mut engine, JobSpec::new("ok", vec![TaskSpec::new("a")]));
    run_all(&mut engine, &[]);
    assert_eq!(
        engine.retry_spec(job),
        Err(RetryRefusal::NothingToRetry { job })
    );
    assert_eq!(
        engine.retry_spec(JobId(7)),
        Err(RetryRefusal::UnknownJob { job: JobId(7) })
    );
    assert_eq!(
        RetryRefusal::NothingToRetry { job }.code(),
        "nothing_to_retry"
    );
}

#[test]
fn a_cancelled_job_retries_every_task_that_did_not_succeed() {
    let mut engine = Engine::new(Config::default());
    let spec = JobSpec::new(
        "c",
        vec![
            TaskSpec::new("a"),
            TaskSpec::new("b").after(GroupKind::AllOf, &["a"]),
        ],
    );
    let (job, _) = submit(&mut engine, spec);
    engine.apply(2, Input::Client(ClientCommand::CancelJob { job }));
    let retry = engine.retry_spec(job).unwrap();
    assert_eq!(retry.tasks.len(), 2);
    assert_eq!(retry.tasks[1].deps.as_ref().unwrap().upstream, ["a"]);
}

#[test]
fn quorum_groups_need_only_the_successes_still_missing() {
    let spec = JobSpec::new(
        "q",
        vec![
            TaskSpec::new("a"),
            TaskSpec::new("b"),
            TaskSpec::new("c"),
            TaskSpec::new("d"),
            TaskSpec::new("all").after(GroupKind::Quorum(3), &["a", "b", "c", "d"]),
        ],
    );
    let succeeded: BTreeSet<String> = ["a".to_string()].into();
    let part = unsucceeded_part(spec.clone(), &succeeded, "n".into()).unwrap();
    let group = part.tasks.last().unwrap().deps.clone().unwrap();
    assert_eq!(group.kind, GroupKind::Quorum(2));
    assert_eq!(group.upstream, ["b", "c", "d"]);
    let most: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
    let part = unsucceeded_part(spec.clone(), &most, "n".into()).unwrap();
    assert_eq!(part.tasks.len(), 2);
    assert_eq!(part.tasks[1].deps, None, "three of four already succeeded");
    let all: BTreeSet<String> = ["a", "b", "c", "d", "all"].map(String::from).into();
    assert_eq!(unsucceeded_part(spec, &all, "n".into()), None);
}

#[test]
fn retry_names_link_to_the_job_they_retry_and_stay_within_the_limit() {
    assert_eq!(retry_name("etl", JobId(3), 256), "etl [retry of job 3]");
    let again = retry_name("etl [retry of job 3]", JobId(9), 256);
    assert_eq!(again, "etl [retry of job 9]");
    assert_eq!(retried_from(&again), Some(JobId(9)));
    let long = "é".repeat(200);
    let cut = retry_name(&long, JobId(12), 256);
    assert!(
        cut.len() <= 256 && cut.ends_with(" [retry of job 12]"),
        "{cut}"
    );
    assert_eq!(retry_name("x", JobId(12), 4), "[ret");
    // The base gives way to the whole mark and its space, to the byte.
    let ascii = retry_name(&"a".repeat(300), JobId(12), 256);
    assert_eq!(ascii, format!("{} [retry of job 12]", "a".repeat(238)));
    // A cut inside a two-byte character backs off to the character before it.
    let odd = retry_name(&long, JobId(12), 255);
    assert_eq!(odd, format!("{} [retry of job 12]", "é".repeat(118)));
    for plain in [
        "etl",
        "a [retry of job ]",
        "a [retry of job +5]",
        "[retry of job 5",
    ] {
        assert_eq!(retried_from(plain), None, "{plain}");
    }
}
