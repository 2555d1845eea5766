//! Retries with backoff, permanent failures, exhausted budgets, and blacklisting.
use keel_engine::*;
use keel_engine_harness::*;

fn retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        backoff_base_ms: 1_000,
        backoff_factor: 2,
        backoff_max_ms: 3_000,
        jitter_pct: 0,
    }
}

fn flaky_job(max_attempts: u32) -> JobSpec {
    let mut t = TaskSpec::new("a");
    t.retry = retry(max_attempts);
    JobSpec::new("j", vec![t])
}

#[test]
fn failures_retry_with_exponential_backoff_until_exhausted() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let (j, t) = h.submit(flaky_job(4)).unwrap();
    let mut now = 0;
    let mut delays = Vec::new();
    let mut offered = h.request("w", 1, 1);
    for attempt in 1..=4u32 {
        h.worker("w", 1, WorkerCommand::Heartbeat);
        let f = h.accept("w", 1, offered[0].0).unwrap();
        assert_eq!(f.attempt, attempt);
        let out = h.fail("w", 1, f, false);
        match accepted(&out) {
            Accepted::Failed {
                retry_at: Some(at), ..
            } => {
                delays.push(at - now);
                assert_eq!(h.task(t).status, TaskStatus::Delayed { until: *at });
                assert!(h.request("w", 1, 1).is_empty(), "not before the backoff");
                now = *at;
                offered = grants_for(&h.tick(now), "w");
                assert_eq!(offered.len(), 1, "offered once the backoff is over");
            }
            Accepted::Failed { retry_at: None, .. } => assert_eq!(attempt, 4),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(delays, vec![1_000, 2_000, 3_000]);
    assert_eq!(h.task(t).failures, 4);
    assert!(matches!(
        h.task(t).status,
        TaskStatus::Done(TaskOutcome::Failed { .. })
    ));
    assert_eq!(h.job_outcome(j), Some(JobOutcome::Failed));
    h.check_replay();
}

#[test]
fn a_permanent_failure_is_not_retried() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let (j, t) = h.submit(flaky_job(5)).unwrap();
    let f = h.take("w", 1);
    let out = h.fail("w", 1, f, true);
    assert!(matches!(
        accepted(&out),
        Accepted::Failed { retry_at: None, .. }
    ));
    assert_eq!(h.task(t).failures, 1);
    assert_eq!(h.job_outcome(j), Some(JobOutcome::Failed));
}

#[test]
fn allowed_failures_do_not_fail_the_job() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let mut spec = flaky_job(1);
    spec.tasks[0].allow_failure = true;
    let (j, _) = h.submit(spec).unwrap();
    let f = h.take("w", 1);
    h.fail("w", 1, f, false);
    assert_eq!(h.job_outcome(j), Some(JobOutcome::Succeeded));
}

#[test]
fn jitter_changes_with_the_seed_but_not_between_replays() {
    let delay = |seed: u64| {
        let mut cfg = config();
        cfg.seed = seed;
        let mut h = Harness::new(cfg);
        h.register("w", 1, &[], 1).unwrap();
        let mut spec = flaky_job(3);
        spec.tasks[0].retry.jitter_pct = 50;
        h.submit(spec).unwrap();
        let f = h.take("w", 1);
        match accepted(&h.fail("w", 1, f, false)) {
            Accepted::Failed {
                retry_at: Some(at), ..
            } => *at,
            other => panic!("{other:?}"),
        }
    };
    let seeds: Vec<u64> = (0..8).map(delay).collect();
    assert!(seeds.iter().all(|d| (500..=1_000).contains(d)), "{seeds:?}");
    assert!(
        seeds.windows(2).any(|w| w[0] != w[1]),
        "jitter is applied: {seeds:?}"
    );
    assert_eq!(delay(3), delay(3));
}

#[test]
fn a_failing_worker_is_blacklisted_then_readmitted_and_its_leases_survive() {
    let mut cfg = config();
    cfg.blacklist = BlacklistPolicy {
        threshold: 2,
        window_ms: 10_000,
        cooldown_ms: 20_000,
    };
    let mut h = Harness::new(cfg);
    h.register("bad", 1, &[], 2).unwrap();
    let mut spec = JobSpec::new("j", tasks(&["a", "b", "c", "d"]));
    for t in &mut spec.tasks {
        t.retry = retry(5);
    }
    h.submit(spec).unwrap();
    let grants = h.request("bad", 1, 2);
    let f1 = h.accept("bad", 1, grants[0].0).unwrap();
    let f2 = h.accept("bad", 1, grants[1].0).unwrap();
    h.at(100);
    h.fail("bad", 1, f1, false);
    // The freed slot is offered again at once (credits remained).
    let f3 = {
        let g = h.request("bad", 1, 1);
        h.accept("bad", 1, g[0].0).unwrap()
    };
    h.at(200);
    let out = h.fail("bad", 1, f3, false);
    assert!(has(&out.effects, |e| matches!(
        e,
        Effect::WorkerBlacklisted { until: 20_200, .. }
    )));
    assert!(
        h.request("bad", 1, 2).is_empty(),
        "no grants while blacklisted"
    );
    let status = |h: &Harness| h.engine.workers()[0].status.clone();
    assert_eq!(status(&h), "blacklisted");
    // Its running lease is not stranded: it still completes.
    let out = h.complete("bad", 1, f2);
    assert!(matches!(
        accepted(&out),
        Accepted::Completed {
            duplicate: false,
            ..
        }
    ));
    for t in (2_000..20_000).step_by(2_000) {
        h.at(t).worker("bad", 1, WorkerCommand::Heartbeat);
    }
    let effects = h.tick(20_200);
    assert!(has(&effects, |e| matches!(
        e,
        Effect::WorkerReadmitted { .. }
    )));
    assert!(
        !grants_for(&effects, "bad").is_empty(),
        "outstanding credits are served on readmission"
    );
    assert_eq!(status(&h), "active");
}

#[test]
fn failures_outside_the_window_do_not_blacklist() {
    let mut cfg = config();
    cfg.blacklist = BlacklistPolicy {
        threshold: 2,
        window_ms: 1_000,
        cooldown_ms: 20_000,
    };
    let mut h = Harness::new(cfg);
    h.register("w", 1, &[], 1).unwrap();
    let mut spec = JobSpec::new("j", tasks(&["a", "b"]));
    for t in &mut spec.tasks {
        t.retry = retry(1);
    }
    h.submit(spec).unwrap();
    let f = h.take("w", 1);
    h.fail("w", 1, f, false);
    h.at(2_000);
    let f = h.take("w", 1);
    let out = h.fail("w", 1, f, false);
    assert!(!has(&out.effects, |e| matches!(
        e,
        Effect::WorkerBlacklisted { .. }
    )));
}

#[test]
fn a_blacklisted_worker_that_is_lost_has_its_tasks_requeued() {
    let mut cfg = config();
    cfg.blacklist = BlacklistPolicy {
        threshold: 1,
        window_ms: 10_000,
        cooldown_ms: 60_000,
    };
    let mut h = Harness::new(cfg);
    h.register("w", 1, &[], 2).unwrap();
    let mut spec = JobSpec::new("j", tasks(&["a", "b"]));
    spec.tasks[0].retry = retry(3);
    let (_, first) = h.submit(spec).unwrap();
    let g = h.request("w", 1, 2);
    let fa = h.accept("w", 1, g[0].0).unwrap();
    let fb = h.accept("w", 1, g[1].0).unwrap();
    h.fail("w", 1, fa, false);
    let effects = h.tick(5_000);
    assert!(has(
        &effects,
        |e| matches!(e, Effect::TaskRequeued { task, reason: EndReason::WorkerLost, .. } if *task == fb.task)
    ));
    assert_eq!(h.task(TaskId::new(first.get() + 1)).attempt, 2);
}

#[test]
fn workers_readmitted_together_are_served_from_the_one_after_the_last_served() {
    let mut cfg = config();
    cfg.blacklist = BlacklistPolicy {
        threshold: 1,
        window_ms: 10_000,
        cooldown_ms: 20_000,
    };
    let mut h = Harness::new(cfg);
    for w in ["w1", "w3"] {
        h.register(w, 1, &[], 1).unwrap();
    }
    let (_, a) = h.submit(flaky_job(5)).unwrap();
    h.submit(job("once", &["b"])).unwrap();
    let on_w3 = h.take("w3", 1);
    // w1 is served last: the round-robin goes on after it.
    let on_w1 = h.take("w1", 1);
    h.at(100);
    h.fail("w3", 1, on_w3, false);
    h.fail("w1", 1, on_w1, true);
    for w in ["w1", "w3"] {
        assert!(h.request(w, 1, 1).is_empty(), "{w} is blacklisted");
    }
    for t in (2_000..=20_000).step_by(2_000) {
        for w in ["w1", "w3"] {
            h.at(t).worker(w, 1, WorkerCommand::Heartbeat);
        }
    }
    assert_eq!(
        h.task(a).status,
        TaskStatus::Queued,
        "a's retry waits for a worker"
    );
    let effects = h.tick(20_100);
    let readmitted = effects
        .iter()
        .filter(|e| matches!(e, Effect::WorkerReadmitted { .. }))
        .count();
    assert_eq!(readmitted, 2, "{effects:?}");
    assert_eq!(grants_for(&effects, "w3").len(), 1, "{effects:?}");
    assert!(grants_for(&effects, "w1").is_empty(), "{effects:?}");
}
