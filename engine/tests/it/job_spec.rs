//! `Engine::job_spec` rebuilds what a job runs with, and `task_counts` counts its tasks
//! by state.
use keel_engine::*;
use keel_engine_harness::*;

fn sample() -> JobSpec {
    let mut spec = JobSpec::new(
        "etl",
        vec![
            TaskSpec::new("extract").requires(&["net", "cpu"]),
            TaskSpec::new("clean").after(GroupKind::AllOf, &["extract"]),
            TaskSpec::new("a").after(GroupKind::AnyOf, &["extract"]),
            TaskSpec::new("q").after(GroupKind::Quorum(2), &["extract", "clean", "a"]),
        ],
    );
    spec.tenant = "analytics".into();
    spec.lane = "batch".into();
    spec.priority = 4;
    spec.deadline_ms = Some(60_000);
    spec.max_concurrency = Some(2);
    spec.tasks[0].payload = Payload::from("run extract");
    spec.tasks[1].delay_ms = 500;
    spec.tasks[1].attempt_timeout_ms = Some(9_000);
    spec.tasks[1].retry.max_attempts = 7;
    spec.tasks[2].priority = Some(9);
    spec.tasks[2].allow_failure = true;
    spec.tasks[3].deps.as_mut().unwrap().on_unsatisfied = UnsatisfiedPolicy::Cancel;
    spec
}

#[test]
fn the_rebuilt_spec_matches_the_submitted_one() {
    let mut h = Harness::new(config());
    let submitted = sample();
    let (j, _) = h.at(1_000).submit(submitted.clone()).unwrap();
    h.at(2_000).tick(2_000);
    let mut expected = submitted;
    for t in &mut expected.tasks {
        t.capabilities.sort();
        // The job's priority is carried per task only where it differs.
        if t.priority == Some(expected.priority) {
            t.priority = None;
        }
    }
    assert_eq!(h.engine.job_spec(j).unwrap(), expected);
}

#[test]
fn the_rebuilt_spec_is_accepted_as_a_new_job() {
    let mut h = Harness::new(config());
    let (j, _) = h.submit(sample()).unwrap();
    let mut again = h.engine.job_spec(j).unwrap();
    again.name = "etl-again".into();
    let (k, _) = h.submit(again).unwrap();
    assert_ne!(j, k);
    assert_eq!(h.engine.describe_job(k).unwrap().tasks.len(), 4);
}

#[test]
fn an_unknown_job_has_no_spec_and_no_counts() {
    let h = Harness::new(config());
    let job = JobId::new(9);
    assert_eq!(h.engine.job_spec(job), Err(Rejection::UnknownJob { job }));
    assert_eq!(
        h.engine.task_counts(job),
        Err(Rejection::UnknownJob { job })
    );
}

#[test]
fn task_counts_agree_with_the_task_views() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 2).unwrap();
    let mut spec = job("j", &["a", "b", "c"]);
    spec.tasks[2] = TaskSpec::new("c").requires(&["gpu"]);
    spec.tasks[1].delay_ms = 10_000;
    let (j, _) = h.submit(spec).unwrap();
    let f = h.take("w", 1);
    h.fail("w", 1, f, true);
    let counts = h.engine.task_counts(j).unwrap();
    let present: Vec<_> = counts.labelled().into_iter().filter(|c| c.1 > 0).collect();
    assert_eq!(present, vec![("delayed", 1), ("blocked", 1), ("failed", 1)]);
    let mut labels: Vec<&str> = h
        .engine
        .describe_job(j)
        .unwrap()
        .tasks
        .iter()
        .map(|t| t.status.label())
        .collect();
    labels.sort();
    assert_eq!(labels, vec!["blocked", "delayed", "failed"]);
    let view = h.engine.describe_job(j).unwrap();
    assert_eq!(view.tasks[2].capabilities, vec!["gpu".to_string()]);
    assert!(view.tasks[0].capabilities.is_empty());
}
