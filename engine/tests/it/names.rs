//! Job names: the same spec under a name is its job again while that job is live or
//! retained; a different spec conflicts while the job runs and makes a new job once it
//! has finished. The harness checks invariants and a snapshot round-trip after every
//! input; each test also replays its input log to the same digest.
use keel_engine::*;
use keel_engine_harness::*;

/// Runs the one task of job `name` (already submitted) to success on worker "w".
fn finish_one(h: &mut Harness) {
    let f = h.take("w", 1);
    h.complete("w", 1, f);
}

#[test]
fn a_different_spec_under_a_finished_jobs_name_makes_a_new_job() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let (old, _) = h.submit(job("nightly", &["a"])).unwrap();
    finish_one(&mut h);
    assert_eq!(h.job_outcome(old), Some(JobOutcome::Succeeded));

    let (new, _) = h.at(10).submit(job("nightly", &["a", "b"])).unwrap();
    assert_ne!(new, old);
    assert_eq!(
        h.engine.job_by_name("nightly"),
        Some(new),
        "the name is the newest job's"
    );
    // The finished one stays queryable by id, unchanged.
    let view = h.engine.describe_job(old).unwrap();
    assert_eq!(view.status.outcome, Some(JobOutcome::Succeeded));
    assert_eq!(view.status.name, "nightly");
    assert_eq!(h.engine.jobs().len(), 2);
    h.check_replay();
}

#[test]
fn the_same_spec_is_deduplicated_while_live_and_while_retained() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let (j, _) = h.submit(job("etl", &["a"])).unwrap();
    let again = h.apply(Input::Client(ClientCommand::SubmitJob(job("etl", &["a"]))));
    assert!(matches!(
        accepted(&again),
        Accepted::JobSubmitted { job, duplicate: true, .. } if *job == j
    ));
    finish_one(&mut h);
    // A resent submission after the job finished still runs nothing twice.
    let retained = h.apply(Input::Client(ClientCommand::SubmitJob(job("etl", &["a"]))));
    assert!(matches!(
        accepted(&retained),
        Accepted::JobSubmitted { job, duplicate: true, .. } if *job == j
    ));
    assert_eq!(h.engine.jobs().len(), 1);
    h.check_replay();
}

#[test]
fn a_different_spec_under_a_live_jobs_name_is_refused() {
    let mut h = Harness::new(config());
    let (j, _) = h.submit(job("etl", &["a"])).unwrap();
    assert_eq!(
        h.submit(job("etl", &["a", "b"])),
        Err(Rejection::JobNameConflict {
            name: "etl".into(),
            existing: j
        })
    );
}

#[test]
fn the_name_follows_its_newest_job_through_retention() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let retention = h.engine.config().retention_ms;
    let (first, _) = h.submit(job("n", &["a"])).unwrap();
    finish_one(&mut h);
    let (second, _) = h.at(100).submit(job("n", &["a", "b"])).unwrap();
    // The newest job is live, so the first spec now conflicts with it.
    assert_eq!(
        h.submit(job("n", &["a"])),
        Err(Rejection::JobNameConflict {
            name: "n".into(),
            existing: second
        })
    );
    // The first job is forgotten at the end of its retention; the name stays with the
    // second, live job.
    h.tick(retention + 1);
    assert!(h.engine.describe_job(first).is_err());
    assert_eq!(h.engine.job_by_name("n"), Some(second));
    // Once the second finishes, the first spec makes a third job.
    h.register("w", 2, &[], 1).unwrap();
    for _ in 0..2 {
        let f = h.take("w", 2);
        h.complete("w", 2, f);
    }
    assert_eq!(h.job_outcome(second), Some(JobOutcome::Succeeded));
    let (third, _) = h.submit(job("n", &["a"])).unwrap();
    assert!(third > second);
    assert_eq!(h.engine.job_by_name("n"), Some(third));
    // Forgetting the second job leaves the name with the third.
    h.tick(h.now + retention + 1);
    assert!(h.engine.describe_job(second).is_err());
    assert_eq!(h.engine.job_by_name("n"), Some(third));
    h.check_replay();
}

#[test]
fn name_reuse_survives_snapshot_and_restore_with_the_same_digest() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let (old, _) = h.submit(job("n", &["a"])).unwrap();
    finish_one(&mut h);
    let (new, _) = h.submit(job("n", &["b"])).unwrap();
    let restored = Engine::restore(&h.engine.snapshot()).unwrap();
    assert_eq!(restored.digest(), h.engine.digest());
    assert_eq!(restored.job_by_name("n"), Some(new));
    assert!(restored.describe_job(old).is_ok());
    // The restored engine goes on deciding exactly as the original does.
    let mut a = h.engine.clone();
    let mut b = restored;
    for (now, input) in [
        (
            50,
            Input::Client(ClientCommand::SubmitJob(job("n", &["a"]))),
        ),
        (
            60,
            Input::Client(ClientCommand::SubmitJob(job("n", &["b"]))),
        ),
    ] {
        assert_eq!(a.apply(now, input.clone()), b.apply(now, input));
    }
    assert_eq!(a.digest(), b.digest());
    h.check_replay();
}
