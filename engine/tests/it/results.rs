//! Reading outputs: a task's output is its winning attempt's, a zombie's completion is
//! never readable, and a job's result is the outputs of its sink tasks.

use keel_engine::*;
use keel_engine_harness::{config, rejection, Harness};

fn complete(h: &mut Harness, w: &str, i: u64, fence: Fence, output: &str) -> Outputs {
    let output = Payload::from(output.as_bytes().to_vec());
    h.worker(w, i, WorkerCommand::Complete { fence, output })
}

fn text(o: &TaskOutput) -> Option<&[u8]> {
    o.output.as_ref().map(|p| &p.0[..])
}

#[test]
fn only_the_winning_attempt_output_is_readable() {
    let mut h = Harness::new(config());
    h.register("zombie", 1, &[], 1).unwrap();
    let spec = JobSpec::new(
        "flow",
        vec![
            TaskSpec::new("a"),
            TaskSpec::new("b").after(GroupKind::AllOf, &["a"]),
            TaskSpec::new("side"),
        ],
    );
    let (job, a) = h.submit(spec).unwrap();
    let b = h.engine.task_by_key(job, "b").unwrap().unwrap();
    assert_eq!(h.engine.task_by_key(job, "nope").unwrap(), None);
    assert_eq!(
        h.engine.task_by_key(JobId::new(99), "a").unwrap_err(),
        Rejection::UnknownJob {
            job: JobId::new(99)
        }
    );

    // The zombie holds "a", falls silent past its liveness timeout and loses it.
    let stale = h.take("zombie", 1);
    assert_eq!(stale.task, a);
    assert_eq!(h.engine.task_output(a).unwrap().output, None);
    h.tick(h.now + 20_000);
    h.register("w", 1, &[], 2).unwrap();
    let fence = h.take("w", 1);
    assert_eq!(fence.task, a);
    // Its late completion is refused and stores nothing.
    let late = complete(&mut h, "zombie", 1, stale, "zombie data");
    assert_eq!(rejection(&late).code(), "unknown_worker");
    assert_eq!(h.engine.task_output(a).unwrap().output, None);
    complete(&mut h, "w", 1, fence, "winner");
    let read = h.engine.task_output(a).unwrap();
    assert_eq!(
        (read.key.as_str(), text(&read)),
        ("a", Some(&b"winner"[..]))
    );
    assert_eq!(read.status.label(), "succeeded");
    // A repeated completion of the winner with other bytes changes nothing.
    complete(&mut h, "w", 1, fence, "changed");
    assert_eq!(
        text(&h.engine.task_output(a).unwrap()),
        Some(&b"winner"[..])
    );

    // The result is the sinks, "b" and "side", in task order; "b" has not run yet.
    let result = h.engine.job_result(job).unwrap();
    let keys: Vec<&str> = result.tasks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["b", "side"]);
    assert!(result.tasks.iter().all(|t| t.output.is_none()));
    assert_eq!(result.status.outcome, None);
    for _ in 0..2 {
        let f = h.take("w", 1);
        let out = if f.task == b { "from b" } else { "from side" };
        complete(&mut h, "w", 1, f, out);
    }
    let result = h.engine.job_result(job).unwrap();
    let outputs: Vec<_> = result.tasks.iter().map(text).collect();
    assert_eq!(outputs, [Some(&b"from b"[..]), Some(&b"from side"[..])]);
    assert_eq!(result.status.outcome, Some(JobOutcome::Succeeded));
    h.check_replay();

    // Forgotten with its job.
    h.tick(h.now + config().retention_ms + 1);
    assert_eq!(
        h.engine.task_output(a).unwrap_err(),
        Rejection::UnknownTask { task: a }
    );
    assert_eq!(
        h.engine.job_result(job).unwrap_err(),
        Rejection::UnknownJob { job }
    );
}
