//! An output that does not fit a limit (the output itself, its job's outputs, a
//! downstream task's inputs) is refused with a refusal naming the limit, and its
//! attempt fails permanently with that refusal as its error: no retry, no lease left
//! running, nothing stored.

use keel_engine::*;
use keel_engine_harness::{config, rejection, Harness};

fn tight() -> Config {
    let mut c = config();
    c.limits.max_payload_bytes = 8;
    c.limits.max_output_bytes_per_job = 10;
    c.limits.max_input_bytes_per_task = 10;
    c
}

/// A harness under `tight()` limits but room for the job's outputs, so only the
/// per-output and per-task input limits bind; worker "w" registered.
fn inputs_only() -> Harness {
    let mut c = tight();
    c.limits.max_output_bytes_per_job = 100;
    let mut h = Harness::new(c);
    h.register("w", 1, &[], 1).unwrap();
    h
}

fn complete(h: &mut Harness, fence: Fence, output: &str) -> Outputs {
    let output = Payload::from(output);
    h.worker("w", 1, WorkerCommand::Complete { fence, output })
}

/// The refusal, then checks the attempt failed permanently naming it and the task
/// kept no output.
fn refused_and_failed(h: &mut Harness, fence: Fence, output: &str) -> Rejection {
    let before = h.engine.usage().stored_bytes;
    let out = complete(h, fence, output);
    let refusal = rejection(&out).clone();
    assert_eq!(refusal.code(), "output_over_limit");
    assert!(!refusal.retryable());
    let finished = out.effects.iter().find_map(|e| match e {
        Effect::TaskFinished { task, outcome, .. } if *task == fence.task => Some(outcome),
        _ => None,
    });
    let error = refusal.to_string();
    assert_eq!(finished, Some(&TaskOutcome::Failed { error }));
    let view = h.task(fence.task);
    assert_eq!(view.status.label(), "failed");
    assert_eq!(view.attempt, fence.attempt, "no new attempt");
    assert_eq!(h.engine.task_output(fence.task).unwrap().output, None);
    assert_eq!(h.engine.usage().stored_bytes, before);
    // A resent completion gets the same refusal; the worker's failure report of the
    // same attempt is answered as already done.
    assert_eq!(rejection(&complete(h, fence, output)), &refusal);
    let fail = WorkerCommand::Fail {
        fence,
        error: "gave up".into(),
        permanent: true,
    };
    let out = h.worker("w", 1, fail);
    assert!(matches!(
        out.reply,
        Some(Ok(Accepted::Failed {
            duplicate: true,
            ..
        }))
    ));
    refusal
}

#[test]
fn an_output_over_the_per_output_limit_fails_its_attempt_permanently() {
    let mut h = Harness::new(tight());
    h.register("w", 1, &[], 1).unwrap();
    let (job, _) = h
        .submit(JobSpec::new("big", vec![TaskSpec::new("a")]))
        .unwrap();
    let fence = h.take("w", 1);
    let refusal = refused_and_failed(&mut h, fence, "123456789");
    assert_eq!(
        refusal,
        Rejection::OutputOverLimit {
            task: fence.task,
            limit: "max_payload_bytes".into(),
            bytes: 9,
            max: 8
        }
    );
    assert_eq!(h.job_outcome(job), Some(JobOutcome::Failed));
    h.check_replay();
}

#[test]
fn an_output_that_would_take_its_job_past_its_total_is_refused() {
    let mut h = Harness::new(tight());
    h.register("w", 1, &[], 2).unwrap();
    let (job, a) = h.submit(JobSpec::new("total", harness_tasks())).unwrap();
    let fa = h.take("w", 1);
    assert_eq!(fa.task, a);
    assert!(matches!(
        complete(&mut h, fa, "123456").reply,
        Some(Ok(Accepted::Completed { .. }))
    ));
    let fb = h.take("w", 1);
    let refusal = refused_and_failed(&mut h, fb, "12345");
    assert_eq!(
        refusal,
        Rejection::OutputOverLimit {
            task: fb.task,
            limit: "max_output_bytes_per_job".into(),
            bytes: 11,
            max: 10
        }
    );
    // Exactly at the total fits.
    let fc = h.take("w", 1);
    assert!(matches!(
        complete(&mut h, fc, "1234").reply,
        Some(Ok(Accepted::Completed { .. }))
    ));
    assert_eq!(h.job_outcome(job), Some(JobOutcome::Failed));
    h.check_replay();
}

fn harness_tasks() -> Vec<TaskSpec> {
    vec![TaskSpec::new("a"), TaskSpec::new("b"), TaskSpec::new("c")]
}

#[test]
fn an_output_that_would_take_a_downstream_task_past_its_inputs_is_refused() {
    let mut h = inputs_only();
    let spec = JobSpec::new(
        "inputs",
        vec![
            TaskSpec::new("a"),
            TaskSpec::new("b"),
            TaskSpec::new("sum").after(GroupKind::AllOf, &["a", "b"]),
            TaskSpec::new("other").after(GroupKind::AllOf, &["b"]),
        ],
    );
    let (job, _) = h.submit(spec).unwrap();
    let fa = h.take("w", 1);
    assert!(matches!(
        complete(&mut h, fa, "123456").reply,
        Some(Ok(Accepted::Completed { .. }))
    ));
    let fb = h.take("w", 1);
    let refusal = refused_and_failed(&mut h, fb, "12345");
    assert_eq!(
        refusal,
        Rejection::OutputOverLimit {
            task: fb.task,
            limit: "max_input_bytes_per_task".into(),
            bytes: 11,
            max: 10
        }
    );
    let sum = h.engine.task_by_key(job, "sum").unwrap().unwrap();
    assert_eq!(h.task(sum).status.label(), "skipped");
    assert_eq!(h.job_outcome(job), Some(JobOutcome::Failed));
    h.check_replay();
}

#[test]
fn an_output_and_the_inputs_it_makes_exactly_at_their_limits_fit() {
    let mut h = inputs_only();
    let spec = JobSpec::new(
        "edges",
        vec![
            TaskSpec::new("aside"),
            TaskSpec::new("a"),
            TaskSpec::new("b"),
            TaskSpec::new("sum").after(GroupKind::AllOf, &["a", "b"]),
        ],
    );
    let (job, _) = h.submit(spec).unwrap();
    // An output no task reads takes the job's outputs past one task's input limit, so
    // sum's inputs are counted one by one.
    let aside = h.take("w", 1);
    assert!(matches!(
        complete(&mut h, aside, "12345").reply,
        Some(Ok(Accepted::Completed { .. }))
    ));
    // Exactly max_payload_bytes (8).
    let fa = h.take("w", 1);
    assert!(matches!(
        complete(&mut h, fa, "12345678").reply,
        Some(Ok(Accepted::Completed { .. }))
    ));
    // Makes sum's inputs exactly max_input_bytes_per_task (10).
    let fb = h.take("w", 1);
    assert!(matches!(
        complete(&mut h, fb, "12").reply,
        Some(Ok(Accepted::Completed { .. }))
    ));
    let sum = h.engine.task_by_key(job, "sum").unwrap().unwrap();
    assert_eq!(h.task(sum).status.label(), "queued");
    h.check_replay();
}

#[test]
fn a_job_whose_outputs_add_up_past_the_input_limit_fits_when_no_task_reads_them_all() {
    let mut h = inputs_only();
    let spec = JobSpec::new(
        "apart",
        vec![
            TaskSpec::new("a"),
            TaskSpec::new("b"),
            TaskSpec::new("after_a").after(GroupKind::AllOf, &["a"]),
            TaskSpec::new("after_b").after(GroupKind::AllOf, &["b"]),
        ],
    );
    let (job, _) = h.submit(spec).unwrap();
    for _ in 0..2 {
        let f = h.take("w", 1);
        assert!(
            matches!(
                complete(&mut h, f, "12345678").reply,
                Some(Ok(Accepted::Completed { .. }))
            ),
            "16 bytes in the job, but each downstream task reads 8 of them"
        );
    }
    for key in ["after_a", "after_b"] {
        let t = h.engine.task_by_key(job, key).unwrap().unwrap();
        assert_eq!(h.task(t).status.label(), "queued");
    }
    h.check_replay();
}
