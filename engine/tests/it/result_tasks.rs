//! The tasks a job names as its result: validated on submission, read by `job_result`,
//! kept through snapshots, part of the digest and of the spec read back, and narrowed
//! to what a retry still runs.

use keel_engine::*;
use keel_engine_harness::{config, Harness};

/// map1, map2 -> reduce -> report: a DAG whose sink is not the interesting result.
fn map_reduce(result: &[&str]) -> JobSpec {
    let mut spec = JobSpec::new(
        "wordcount",
        vec![
            TaskSpec::new("map1"),
            TaskSpec::new("map2"),
            TaskSpec::new("reduce").after(GroupKind::AllOf, &["map1", "map2"]),
            TaskSpec::new("report").after(GroupKind::AllOf, &["reduce"]),
        ],
    );
    spec.result = result.iter().map(|k| k.to_string()).collect();
    spec
}

fn keys(result: &JobResult) -> Vec<&str> {
    result.tasks.iter().map(|t| t.key.as_str()).collect()
}

/// Runs every task of the job to success, each with output `out:<key>`.
fn run_all(h: &mut Harness, job: JobId) {
    h.register("w", 1, &[], 4).unwrap();
    while h.job_outcome(job).is_none() {
        let fence = h.take("w", 1);
        let key = h.task(fence.task).key;
        let output = Payload::from(format!("out:{key}").as_str());
        h.worker("w", 1, WorkerCommand::Complete { fence, output });
    }
}

#[test]
fn a_named_result_is_read_in_task_order_instead_of_the_sinks() {
    let mut h = Harness::new(config());
    let (job, _) = h.submit(map_reduce(&["reduce", "map1"])).unwrap();
    run_all(&mut h, job);
    let result = h.engine.job_result(job).unwrap();
    assert_eq!(keys(&result), ["map1", "reduce"]);
    let outputs: Vec<_> = result.tasks.iter().map(|t| t.output.clone()).collect();
    assert_eq!(
        outputs,
        [
            Some(Payload::from("out:map1")),
            Some(Payload::from("out:reduce"))
        ]
    );
    h.check_replay();
}

#[test]
fn no_named_result_means_the_sinks() {
    let mut h = Harness::new(config());
    let (job, _) = h.submit(map_reduce(&[])).unwrap();
    run_all(&mut h, job);
    assert_eq!(keys(&h.engine.job_result(job).unwrap()), ["report"]);
}

#[test]
fn an_unknown_or_repeated_result_task_is_refused_naming_it() {
    let mut h = Harness::new(config());
    let unknown = h.submit(map_reduce(&["reduce", "sum"])).unwrap_err();
    assert_eq!(
        unknown,
        Rejection::InvalidJob(JobError::UnknownResultTask { key: "sum".into() })
    );
    assert_eq!(
        unknown.to_string(),
        "invalid job: the job's result names unknown task \"sum\""
    );
    let twice = h
        .submit(map_reduce(&["map2", "reduce", "map2"]))
        .unwrap_err();
    assert_eq!(
        twice,
        Rejection::InvalidJob(JobError::DuplicateResultTask { key: "map2".into() })
    );
    // Nothing was admitted.
    assert!(h.engine.jobs().is_empty());
}

#[test]
fn the_named_result_survives_a_snapshot_and_changes_the_digest() {
    let mut named = Harness::new(config());
    let (job, _) = named.submit(map_reduce(&["reduce"])).unwrap();
    let mut sinks = Harness::new(config());
    sinks.submit(map_reduce(&[])).unwrap();
    assert_ne!(named.engine.digest(), sinks.engine.digest());

    let restored = Engine::restore(&named.engine.snapshot()).unwrap();
    assert_eq!(restored.digest(), named.engine.digest());
    assert_eq!(keys(&restored.job_result(job).unwrap()), ["reduce"]);
    assert_eq!(restored.job_spec(job).unwrap().result, ["reduce"]);
}

#[test]
fn the_same_name_with_another_result_is_another_spec() {
    let mut h = Harness::new(config());
    h.submit(map_reduce(&["reduce"])).unwrap();
    let again = h.submit(map_reduce(&["reduce"])).unwrap();
    assert_eq!(again.0, JobId::new(1));
    let other = h.submit(map_reduce(&["map1"])).unwrap_err();
    assert!(
        matches!(other, Rejection::JobNameConflict { .. }),
        "{other}"
    );
}

#[test]
fn a_retry_keeps_only_result_tasks_it_runs_again() {
    let mut h = Harness::new(config());
    let mut spec = map_reduce(&["map1", "reduce"]);
    spec.tasks[2].retry.max_attempts = 1;
    let (job, _) = h.submit(spec).unwrap();
    h.register("w", 1, &[], 4).unwrap();
    while h.job_outcome(job).is_none() {
        let fence = h.take("w", 1);
        if h.task(fence.task).key == "reduce" {
            h.fail("w", 1, fence, true);
        } else {
            h.complete("w", 1, fence);
        }
    }
    let retry = h.engine.retry_spec(job).unwrap();
    let kept: Vec<&str> = retry.tasks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(kept, ["reduce", "report"]);
    assert_eq!(retry.result, ["reduce"]);
}
