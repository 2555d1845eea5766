//! Worker membership: registration checks, liveness, instances, drain and leave.
use keel_engine::*;
use keel_engine_harness::*;

#[test]
fn capability_tokens_are_validated_with_a_reason() {
    let mut h = Harness::new(config());
    let cases: &[(&str, CapabilityIssue)] = &[
        ("", CapabilityIssue::Empty),
        ("has space", CapabilityIssue::Whitespace),
        ("ctl\u{7}", CapabilityIssue::Control),
    ];
    for (token, why) in cases {
        let r = h.register("w", 1, &[token], 1).unwrap_err();
        assert_eq!(
            r,
            Rejection::CapabilityToken {
                token: token.to_string(),
                why: why.clone()
            }
        );
    }
    let long = "x".repeat(65);
    let r = h.register("w", 1, &[&long], 1).unwrap_err();
    assert!(matches!(
        r,
        Rejection::CapabilityToken {
            why: CapabilityIssue::TooLong { limit: 64 },
            ..
        }
    ));
    let r = h.register("w", 1, &["gpu", "gpu"], 1).unwrap_err();
    assert!(matches!(
        r,
        Rejection::CapabilityToken {
            why: CapabilityIssue::Duplicate,
            ..
        }
    ));
    let many: Vec<String> = (0..65).map(|i| format!("c{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(matches!(
        h.register("w", 1, &many, 1).unwrap_err(),
        Rejection::InvalidWorker { .. }
    ));
    assert!(matches!(
        h.register("w", 1, &[], 0).unwrap_err(),
        Rejection::InvalidWorker { .. }
    ));
    assert!(
        h.engine.workers().is_empty(),
        "a refused registration leaves nothing behind"
    );
}

#[test]
fn registration_is_idempotent_and_conflicts_are_refused() {
    let mut h = Harness::new(config());
    assert!(matches!(
        h.register("w", 1, &["gpu"], 2),
        Ok(Accepted::Registered {
            duplicate: false,
            ..
        })
    ));
    assert!(matches!(
        h.register("w", 1, &["gpu"], 2),
        Ok(Accepted::Registered {
            duplicate: true,
            ..
        })
    ));
    // Any one field asked for differently is a conflict.
    assert!(matches!(
        h.register("w", 1, &["ssd"], 2),
        Err(Rejection::RegistrationConflict { .. })
    ));
    assert!(matches!(
        h.register("w", 1, &["gpu"], 3),
        Err(Rejection::RegistrationConflict { .. })
    ));
    let other_lanes = WorkerCommand::Register {
        capabilities: vec!["gpu".into()],
        lanes: vec!["batch".into()],
        max_concurrency: 2,
    };
    assert!(matches!(
        rejection(&h.worker("w", 1, other_lanes)),
        Rejection::RegistrationConflict { .. }
    ));
    // An older instance (a delayed message from a previous process) is refused.
    h.register("w", 5, &[], 2).unwrap();
    assert!(matches!(
        h.register("w", 4, &[], 2),
        Err(Rejection::StaleInstance { .. })
    ));
    let out = h.worker("w", 1, WorkerCommand::Heartbeat);
    assert!(matches!(rejection(&out), Rejection::StaleInstance { .. }));
    let out = h.worker("nobody", 1, WorkerCommand::Heartbeat);
    assert!(matches!(rejection(&out), Rejection::UnknownWorker { .. }));
}

#[test]
fn silent_worker_is_lost_and_its_task_requeued_without_spending_retries() {
    let mut h = Harness::new(config());
    h.register("w1", 1, &[], 1).unwrap();
    let (j, t) = h.submit(job("j", &["a"])).unwrap();
    let f = h.take("w1", 1);
    assert_eq!((f.attempt, f.epoch), (1, 1));
    // w1 goes silent; liveness timeout is 5s from its last message at t=0.
    let effects = h.tick(4_999);
    assert!(effects.is_empty());
    let effects = h.tick(5_000);
    assert!(has(
        &effects,
        |e| matches!(e, Effect::WorkerLost { worker, .. } if worker.as_str() == "w1")
    ));
    assert!(has(&effects, |e| matches!(
        e,
        Effect::LeaseRevoked {
            reason: EndReason::WorkerLost,
            ..
        }
    )));
    assert!(has(&effects, |e| matches!(
        e,
        Effect::TaskRequeued {
            attempt: 2,
            reason: EndReason::WorkerLost,
            ..
        }
    )));
    let v = h.task(t);
    assert_eq!((v.attempt, v.failures, v.losses), (2, 0, 1));
    // The zombie cannot act; a new worker gets attempt 2 with a higher epoch.
    let out = h.complete("w1", 1, f);
    assert!(matches!(rejection(&out), Rejection::WorkerLost { .. }));
    h.register("w2", 1, &[], 1).unwrap();
    let f2 = h.take("w2", 1);
    assert_eq!((f2.attempt, f2.epoch), (2, 2));
    h.complete("w2", 1, f2);
    assert_eq!(h.job_outcome(j), Some(JobOutcome::Succeeded));
    h.check_replay();
}

#[test]
fn heartbeats_keep_a_worker_alive() {
    let mut h = Harness::new(config());
    h.register("w1", 1, &[], 1).unwrap();
    for t in (1_000..=20_000).step_by(2_000) {
        h.at(t).worker("w1", 1, WorkerCommand::Heartbeat);
    }
    h.tick(22_000);
    assert_eq!(h.engine.workers()[0].status, "active");
    h.tick(24_000);
    assert_eq!(h.engine.workers()[0].status, "lost");
}

#[test]
fn a_task_that_keeps_losing_workers_still_terminates() {
    let mut h = Harness::new(config());
    let (j, t) = h.submit(job("poison", &["a"])).unwrap();
    for n in 1..=4u64 {
        let name = format!("w{n}");
        h.at(n * 100_000).register(&name, 1, &[], 1).unwrap();
        h.take(&name, 1);
        h.tick(n * 100_000 + 5_000);
    }
    // max_losses is 3: the fourth loss fails the task.
    assert!(matches!(
        h.task(t).status,
        TaskStatus::Done(TaskOutcome::Failed { .. })
    ));
    assert_eq!(h.task(t).failures, 0);
    assert_eq!(h.job_outcome(j), Some(JobOutcome::Failed));
}

#[test]
fn a_new_instance_replaces_the_old_one_and_requeues_its_work() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let (_, t) = h.submit(job("j", &["a"])).unwrap();
    let f = h.take("w", 1);
    h.at(100);
    h.register("w", 2, &[], 1).unwrap();
    assert_eq!(h.task(t).attempt, 2);
    let out = h.complete("w", 1, f);
    assert!(matches!(rejection(&out), Rejection::StaleInstance { .. }));
    let f2 = h.take("w", 2);
    assert_eq!(f2.attempt, 2);
}

/// A new instance replacing a live one takes over its liveness check: the old
/// instance's check is called off, not left to fire on a record that is gone.
#[test]
fn a_new_instance_of_a_live_worker_leaves_one_liveness_check() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    h.at(100);
    h.register("w", 2, &[], 1).unwrap();
    let (due, total) = h.engine.timers_due(u64::MAX, 16);
    let due: Vec<_> = due.into_iter().map(|d| (d.at, d.what)).collect();
    assert_eq!(total, 1, "{due:?}");
    assert_eq!(due, [(5_100, "liveness of worker w".to_string())]);
}

#[test]
fn draining_stops_grants_but_lets_leases_finish() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 2).unwrap();
    h.submit(job("j", &["a", "b"])).unwrap();
    let f = h.take("w", 1);
    h.worker("w", 1, WorkerCommand::RequestWork { credits: 1 });
    let out = h.worker("w", 1, WorkerCommand::Drain);
    // The pending offer for b is withdrawn; a keeps running.
    assert!(has(&out.effects, |e| matches!(
        e,
        Effect::GrantWithdrawn {
            reason: EndReason::WorkerLeft,
            ..
        }
    )));
    assert!(h.request("w", 1, 5).is_empty());
    let out = h.complete("w", 1, f);
    assert!(matches!(
        accepted(&out),
        Accepted::Completed {
            duplicate: false,
            ..
        }
    ));
    assert!(has(&out.effects, |e| matches!(
        e,
        Effect::WorkerDrained { .. }
    )));
}

#[test]
fn deregister_requeues_held_tasks_and_forgets_the_worker() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let (_, t) = h.submit(job("j", &["a"])).unwrap();
    h.take("w", 1);
    let out = h.worker("w", 1, WorkerCommand::Deregister);
    assert!(has(&out.effects, |e| matches!(
        e,
        Effect::TaskRequeued {
            reason: EndReason::WorkerLeft,
            ..
        }
    )));
    assert_eq!(h.task(t).status, TaskStatus::Queued);
    assert!(h.engine.workers().is_empty());
}

#[test]
fn worker_limit_is_enforced() {
    let mut cfg = config();
    cfg.limits.max_workers = 2;
    let mut h = Harness::new(cfg);
    h.register("a", 1, &[], 1).unwrap();
    h.register("b", 1, &[], 1).unwrap();
    assert_eq!(
        h.register("c", 1, &[], 1),
        Err(Rejection::TooManyWorkers { limit: 2 })
    );
}

/// A worker may ask for exactly the most concurrency the limits allow, and no more.
#[test]
fn max_concurrency_is_bounded_by_the_limit_inclusively() {
    let mut config = config();
    config.limits.max_concurrency_per_worker = 8;
    let mut h = Harness::new(config);
    assert!(h.register("w", 1, &[], 8).is_ok());
    for (worker, max) in [("x", 9), ("y", 0)] {
        match h.register(worker, 1, &[], max) {
            Err(Rejection::InvalidWorker { why, .. }) => {
                assert!(why.contains("outside 1..=8"), "{why}")
            }
            other => panic!("max_concurrency {max}: {other:?}"),
        }
    }
}

/// A lost worker's record waits to be forgotten; a new instance registering meanwhile
/// replaces it, and the forgetting is called off with it: no timer of the old record
/// stays behind.
#[test]
fn a_new_instance_of_a_lost_worker_calls_off_the_forgetting() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let lost = h.tick(5_000);
    assert!(has(&lost, |e| matches!(e, Effect::WorkerLost { .. })));
    let timers = |h: &Harness| -> Vec<String> {
        let (due, _) = h.engine.timers_due(u64::MAX, 16);
        due.into_iter().map(|d| d.what).collect()
    };
    assert_eq!(timers(&h), ["forgetting worker w"]);
    h.at(6_000);
    h.register("w", 2, &[], 1).unwrap();
    assert_eq!(timers(&h), ["liveness of worker w"]);
}
