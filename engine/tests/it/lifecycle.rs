//! Timers and the end of jobs: delays, attempt timeouts, deadlines, cancellation,
//! suspension with signals, retention, next_wakeup, and snapshot + replay.
use keel_engine::*;
use keel_engine_harness::*;

#[test]
fn delayed_tasks_wait_for_their_time() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let mut t = TaskSpec::new("later");
    t.delay_ms = 3_000;
    let (_, tid) = h.submit(JobSpec::new("j", vec![t])).unwrap();
    assert_eq!(h.task(tid).status, TaskStatus::Delayed { until: 3_000 });
    assert!(h.request("w", 1, 1).is_empty());
    assert_eq!(h.engine.next_wakeup(), Some(3_000));
    assert_eq!(grants_for(&h.tick(3_000), "w").len(), 1);
}

#[test]
fn an_attempt_past_its_timeout_is_revoked_and_counted_as_a_failure() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let mut t = TaskSpec::new("slow");
    t.attempt_timeout_ms = Some(2_000);
    t.retry.jitter_pct = 0;
    let (_, tid) = h.submit(JobSpec::new("j", vec![t])).unwrap();
    let f = h.take("w", 1);
    let effects = h.tick(2_000);
    assert!(has(
        &effects,
        |e| matches!(e, Effect::LeaseRevoked { reason: EndReason::AttemptTimedOut, fence, .. } if *fence == f)
    ));
    let v = h.task(tid);
    assert_eq!((v.failures, v.attempt), (1, 2));
    assert_eq!(v.status, TaskStatus::Delayed { until: 3_000 });
    assert!(matches!(
        rejection(&h.complete("w", 1, f)),
        Rejection::StaleFence { .. }
    ));
}

#[test]
fn a_job_past_its_deadline_ends_and_revokes_its_leases() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let mut spec = job("j", &["a", "b"]);
    spec.deadline_ms = Some(4_000);
    let (j, _) = h.submit(spec).unwrap();
    let f = h.take("w", 1);
    h.at(3_000).worker("w", 1, WorkerCommand::Heartbeat);
    let effects = h.tick(4_000);
    assert!(has(
        &effects,
        |e| matches!(e, Effect::LeaseRevoked { reason: EndReason::DeadlineExceeded, fence, .. } if *fence == f)
    ));
    assert!(has(&effects, |e| matches!(
        e,
        Effect::JobFinished {
            outcome: JobOutcome::DeadlineExceeded,
            ..
        }
    )));
    assert_eq!(h.job_outcome(j), Some(JobOutcome::DeadlineExceeded));
}

#[test]
fn cancelling_a_job_tells_every_holder_and_ends_every_task() {
    let mut h = Harness::new(config());
    h.register("a", 1, &[], 1).unwrap();
    h.register("b", 1, &[], 1).unwrap();
    let (j, _) = h.submit(job("j", &["t1", "t2", "t3", "t4"])).unwrap();
    let fa = h.take("a", 1);
    let gb = h.request("b", 1, 1);
    let out = h.apply(Input::Client(ClientCommand::CancelJob { job: j }));
    assert_eq!(
        accepted(&out),
        &Accepted::JobCancelled {
            job: j,
            already_finished: false
        }
    );
    assert!(has(
        &out.effects,
        |e| matches!(e, Effect::LeaseRevoked { worker, reason: EndReason::JobCancelled, .. } if worker.as_str() == "a")
    ));
    assert!(has(
        &out.effects,
        |e| matches!(e, Effect::GrantWithdrawn { worker, grant, .. } if worker.as_str() == "b" && *grant == gb[0].0)
    ));
    let cancelled = out
        .effects
        .iter()
        .filter(|e| {
            matches!(
                e,
                Effect::TaskFinished {
                    outcome: TaskOutcome::Cancelled { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(cancelled, 4);
    assert_eq!(h.job_outcome(j), Some(JobOutcome::Cancelled));
    assert!(matches!(
        rejection(&h.complete("a", 1, fa)),
        Rejection::StaleFence { .. }
    ));
    assert!(h.request("a", 1, 1).is_empty());
    let again = h.apply(Input::Client(ClientCommand::CancelJob { job: j }));
    assert_eq!(
        accepted(&again),
        &Accepted::JobCancelled {
            job: j,
            already_finished: true
        }
    );
    let unknown = h.apply(Input::Client(ClientCommand::CancelJob {
        job: JobId::new(77),
    }));
    assert_eq!(
        rejection(&unknown),
        &Rejection::UnknownJob {
            job: JobId::new(77)
        }
    );
}

fn signal(h: &mut Harness, task: TaskId, wp: &str, key: &str) -> Outputs {
    h.apply(Input::Client(ClientCommand::Signal {
        task,
        waitpoint: wp.into(),
        idempotency_key: key.into(),
        payload: Payload::from("go"),
    }))
}

fn suspend(h: &mut Harness, f: Fence, timeout: Option<u64>, on_timeout: SuspendTimeout) -> Outputs {
    let cmd = WorkerCommand::Suspend {
        fence: f,
        waitpoint: "approval".into(),
        timeout_ms: timeout,
        on_timeout,
    };
    h.worker("w", 1, cmd)
}

#[test]
fn a_suspended_task_resumes_on_a_signal_once() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let (j, t) = h.submit(job("j", &["a"])).unwrap();
    let f = h.take("w", 1);
    let out = suspend(&mut h, f, None, SuspendTimeout::Fail);
    assert_eq!(
        accepted(&out),
        &Accepted::Suspended {
            fence: f,
            duplicate: false
        }
    );
    assert_eq!(
        h.task(t).status,
        TaskStatus::Suspended {
            waitpoint: "approval".into()
        }
    );
    assert!(matches!(
        rejection(&signal(&mut h, t, "other", "k1")),
        Rejection::NotWaiting { .. }
    ));
    let out = signal(&mut h, t, "approval", "k1");
    assert_eq!(
        accepted(&out),
        &Accepted::Signalled {
            task: t,
            resumed: true,
            duplicate: false
        }
    );
    let dup = signal(&mut h, t, "approval", "k1");
    assert_eq!(
        accepted(&dup),
        &Accepted::Signalled {
            task: t,
            resumed: false,
            duplicate: true
        }
    );
    // Resumed: same attempt, new epoch; the old fence is stale.
    let f2 = h.take("w", 1);
    assert_eq!((f2.attempt, f2.epoch), (f.attempt, f.epoch + 1));
    assert!(matches!(
        rejection(&h.complete("w", 1, f)),
        Rejection::StaleFence { .. }
    ));
    h.complete("w", 1, f2);
    assert_eq!(h.job_outcome(j), Some(JobOutcome::Succeeded));
}

#[test]
fn suspension_timeouts_fail_or_resume_by_policy() {
    for (policy, expect_failed) in [
        (SuspendTimeout::Fail, true),
        (SuspendTimeout::Resume, false),
    ] {
        let mut h = Harness::new(config());
        h.register("w", 1, &[], 1).unwrap();
        let (_, t) = h.submit(job("j", &["a"])).unwrap();
        let f = h.take("w", 1);
        suspend(&mut h, f, Some(1_500), policy);
        h.at(1_000).worker("w", 1, WorkerCommand::Heartbeat);
        h.tick(1_500);
        let failed = matches!(
            h.task(t).status,
            TaskStatus::Done(TaskOutcome::Failed { .. })
        );
        assert_eq!(failed, expect_failed, "{policy:?}");
    }
}

#[test]
fn a_completion_under_the_fence_from_before_a_suspension_is_stale_after_success() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let (_, t) = h.submit(job("j", &["a"])).unwrap();
    let before = h.take("w", 1);
    suspend(&mut h, before, None, SuspendTimeout::Fail);
    signal(&mut h, t, "approval", "k1");
    let after = h.take("w", 1);
    assert_eq!(
        (after.attempt, after.epoch),
        (before.attempt, before.epoch + 1)
    );
    assert_eq!(
        accepted(&h.complete("w", 1, after)),
        &Accepted::Completed {
            fence: after,
            duplicate: false
        }
    );
    // Same attempt, older epoch: not the completion that won, so not its duplicate.
    let late = h.complete("w", 1, before);
    assert!(
        matches!(rejection(&late), Rejection::StaleFence { .. }),
        "{late:?}"
    );
}

#[test]
fn signals_per_task_are_limited() {
    let mut cfg = config();
    cfg.limits.max_signals_per_task = 1;
    let mut h = Harness::new(cfg);
    h.register("w", 1, &[], 1).unwrap();
    let (_, t) = h.submit(job("j", &["a"])).unwrap();
    let f = h.take("w", 1);
    suspend(&mut h, f, None, SuspendTimeout::Fail);
    signal(&mut h, t, "approval", "k1");
    let f2 = h.take("w", 1);
    suspend(&mut h, f2, None, SuspendTimeout::Fail);
    let out = signal(&mut h, t, "approval", "k2");
    assert_eq!(
        rejection(&out),
        &Rejection::TooManySignals { task: t, limit: 1 }
    );
}

#[test]
fn finished_jobs_are_forgotten_after_retention() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let (j, _) = h.submit(job("j", &["a"])).unwrap();
    let f = h.take("w", 1);
    h.complete("w", 1, f);
    let retention = h.engine.config().retention_ms;
    h.at(retention - 1).register("w", 2, &[], 1).unwrap();
    assert!(h.engine.describe_job(j).is_ok());
    h.tick(retention);
    assert_eq!(
        h.engine.describe_job(j).unwrap_err(),
        Rejection::UnknownJob { job: j }
    );
    assert!(h.engine.job_by_name("j").is_none());
}

#[test]
fn a_job_status_is_the_summary_of_its_description_until_it_is_forgotten() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let (j, _) = h.submit(job("j", &["a", "b"])).unwrap();
    let summary = |h: &Harness| {
        let status = h.engine.job_status(j).unwrap();
        assert_eq!(status, h.engine.describe_job(j).unwrap().status);
        (status.remaining, status.outcome)
    };
    assert_eq!(summary(&h), (2, None));
    let f = h.take("w", 1);
    h.complete("w", 1, f);
    assert_eq!(summary(&h), (1, None));
    let f = h.take("w", 1);
    h.complete("w", 1, f);
    assert_eq!(summary(&h), (0, Some(JobOutcome::Succeeded)));
    h.tick(h.engine.config().retention_ms + 1_000);
    assert_eq!(
        h.engine.job_status(j).unwrap_err(),
        Rejection::UnknownJob { job: j }
    );
}

#[test]
fn the_clock_never_runs_backwards() {
    let mut h = Harness::new(config());
    h.tick(5_000);
    h.at(1_000).register("w", 1, &[], 1).unwrap();
    assert_eq!(h.engine.now(), 5_000);
}

#[test]
fn snapshot_plus_replay_rebuilds_the_same_state() {
    let mut h = Harness::new(config());
    h.register("w", 1, &["gpu"], 2).unwrap();
    let spec = JobSpec::new(
        "j",
        vec![
            TaskSpec::new("a"),
            TaskSpec::new("b").after(GroupKind::AllOf, &["a"]),
        ],
    );
    h.submit(spec).unwrap();
    let f = h.take("w", 1);
    let snap = h.engine.snapshot();
    let mark = h.log.len();
    h.at(500);
    h.complete("w", 1, f);
    h.take("w", 1);
    h.tick(20_000);
    let mut rebuilt = Engine::restore(&snap).unwrap();
    for (t, input) in &h.log[mark..] {
        rebuilt.apply(*t, input.clone());
    }
    assert_eq!(rebuilt.digest(), h.engine.digest());
    h.check_replay();
}

#[test]
fn restore_refuses_bad_snapshots() {
    assert!(matches!(
        Engine::restore(&[1, 0]),
        Err(RestoreError::Decode(_))
    ));
    assert!(matches!(
        Engine::restore(&[11, 0, 0, 0, 1]),
        Err(RestoreError::Version { found: 11, .. })
    ));
    let mut snap = Engine::new(config()).snapshot();
    snap.truncate(snap.len() / 2);
    assert!(Engine::restore(&snap).is_err());
}
