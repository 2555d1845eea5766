//! Claim grants, leases and fencing: zombies, stale fences, idempotent terminals, races.
use keel_engine::*;
use keel_engine_harness::*;

fn one_task() -> (Harness, TaskId) {
    let mut h = Harness::new(config());
    h.register("w1", 1, &[], 1).unwrap();
    h.register("w2", 1, &[], 1).unwrap();
    let (_, t) = h.submit(job("j", &["a"])).unwrap();
    (h, t)
}

#[test]
fn zombie_completion_after_lease_expiry_is_rejected() {
    let (mut h, t) = one_task();
    let f = h.take("w1", 1);
    // w1 keeps heartbeating (so it is not lost) but stops renewing: a paused handler.
    for at in [4_000, 8_000] {
        h.at(at).worker("w1", 1, WorkerCommand::Heartbeat);
    }
    let effects = h.tick(10_000);
    assert!(has(
        &effects,
        |e| matches!(e, Effect::LeaseRevoked { reason: EndReason::LeaseExpired, fence, .. } if *fence == f)
    ));
    assert_eq!(h.task(t).attempt, 2);
    let before = h.engine.digest();
    for cmd in [
        WorkerCommand::Complete {
            fence: f,
            output: Payload::default(),
        },
        WorkerCommand::Renew { fence: f },
        WorkerCommand::Fail {
            fence: f,
            error: "late".into(),
            permanent: true,
        },
    ] {
        let out = h.worker("w1", 1, cmd);
        assert!(matches!(
            rejection(&out),
            Rejection::StaleFence {
                attempt_seen: 1,
                attempt_current: 2,
                ..
            }
        ));
    }
    // Rejections change nothing but the worker's last-seen time.
    h.worker("w1", 1, WorkerCommand::Heartbeat);
    assert_ne!(before, h.engine.digest(), "heartbeat moves last_seen");
    assert_eq!(h.task(t).status, TaskStatus::Queued);
    assert_eq!(h.task(t).losses, 1);
}

#[test]
fn renew_extends_the_lease() {
    let (mut h, t) = one_task();
    let f = h.take("w1", 1);
    for at in [4_000, 8_000, 12_000] {
        let out = h.at(at).worker("w1", 1, WorkerCommand::Renew { fence: f });
        assert_eq!(
            accepted(&out),
            &Accepted::Renewed {
                fence: f,
                expires_at: at + 10_000
            }
        );
    }
    h.at(16_000).worker("w1", 1, WorkerCommand::Heartbeat);
    h.at(20_000).worker("w1", 1, WorkerCommand::Heartbeat);
    h.tick(21_999);
    assert!(matches!(h.task(t).status, TaskStatus::Running { .. }));
    let effects = h.tick(22_000);
    assert!(
        has(&effects, |e| matches!(e, Effect::LeaseRevoked { .. })),
        "expires 10s after the last renewal"
    );
}

#[test]
fn fences_name_the_holder_and_the_epoch() {
    let (mut h, _) = one_task();
    let f = h.take("w1", 1);
    let out = h.complete("w2", 1, f);
    assert!(matches!(rejection(&out), Rejection::NotLeaseHolder { .. }));
    let bad_epoch = Fence {
        epoch: f.epoch + 1,
        ..f
    };
    let out = h.complete("w1", 1, bad_epoch);
    assert!(matches!(rejection(&out), Rejection::StaleFence { .. }));
    let bad_task = Fence {
        task: TaskId::new(999),
        ..f
    };
    let out = h.complete("w1", 1, bad_task);
    assert_eq!(
        rejection(&out),
        &Rejection::UnknownTask {
            task: TaskId::new(999)
        }
    );
}

#[test]
fn terminal_commands_are_idempotent() {
    let (mut h, t) = one_task();
    let f = h.take("w1", 1);
    let out = h.complete("w1", 1, f);
    assert_eq!(
        accepted(&out),
        &Accepted::Completed {
            fence: f,
            duplicate: false
        }
    );
    assert_eq!(
        out.effects
            .iter()
            .filter(|e| matches!(e, Effect::TaskFinished { .. }))
            .count(),
        1
    );
    let d = h.engine.digest();
    let out = h.complete("w1", 1, f);
    assert_eq!(
        accepted(&out),
        &Accepted::Completed {
            fence: f,
            duplicate: true
        }
    );
    assert!(out.effects.is_empty(), "a replayed complete emits nothing");
    assert_eq!(h.engine.digest(), d);
    assert_eq!(h.task(t).attempts.len(), 1);
    // A fail for an attempt that completed is stale, not a second outcome.
    let out = h.fail("w1", 1, f, false);
    assert!(matches!(rejection(&out), Rejection::StaleFence { .. }));
}

#[test]
fn replayed_fail_is_answered_the_same_way() {
    let (mut h, _) = one_task();
    let f = h.take("w1", 1);
    let first = h.fail("w1", 1, f, false);
    let Accepted::Failed {
        retry_at,
        duplicate: false,
        ..
    } = accepted(&first).clone()
    else {
        panic!()
    };
    assert!(retry_at.is_some());
    let again = h.fail("w1", 1, f, false);
    assert_eq!(
        accepted(&again),
        &Accepted::Failed {
            fence: f,
            duplicate: true,
            retry_at
        }
    );
}

#[test]
fn grant_expiry_returns_the_task_to_ready() {
    let (mut h, t) = one_task();
    let grants = h.request("w1", 1, 1);
    assert_eq!(grants, vec![(GrantId::new(1), t)]);
    let effects = h.tick(1_000);
    assert!(has(&effects, |e| matches!(
        e,
        Effect::GrantWithdrawn {
            reason: EndReason::GrantExpired,
            ..
        }
    )));
    assert_eq!(h.task(t).status, TaskStatus::Queued);
    assert_eq!(
        h.task(t).attempt,
        1,
        "an unaccepted grant is not an attempt"
    );
    let late = h.accept("w1", 1, GrantId::new(1));
    assert_eq!(
        late,
        Err(Rejection::UnknownGrant {
            grant: GrantId::new(1)
        })
    );
    let g2 = h.request("w2", 1, 1);
    assert_eq!(g2.len(), 1);
}

#[test]
fn released_grant_goes_back_to_the_queue() {
    let (mut h, t) = one_task();
    let g = h.request("w1", 1, 1)[0].0;
    let out = h.worker("w1", 1, WorkerCommand::ReleaseGrant { grant: g });
    assert_eq!(accepted(&out), &Accepted::Ok);
    assert_eq!(h.task(t).status, TaskStatus::Queued);
}

#[test]
fn a_grant_can_be_released_only_by_its_worker_and_only_before_it_is_accepted() {
    let (mut h, t) = one_task();
    let g = h.request("w1", 1, 1)[0].0;
    let release = |h: &mut Harness, w| h.worker(w, 1, WorkerCommand::ReleaseGrant { grant: g });
    let out = release(&mut h, "w2");
    assert!(matches!(rejection(&out), Rejection::GrantNotYours { .. }));
    h.accept("w1", 1, g).unwrap();
    // Accepted, the grant is a lease now: its own worker releasing it names no grant.
    let out = release(&mut h, "w1");
    assert_eq!(rejection(&out), &Rejection::UnknownGrant { grant: g });
    assert!(matches!(h.task(t).status, TaskStatus::Running { .. }));
}

#[test]
fn two_workers_race_for_one_task_and_exactly_one_wins() {
    let (mut h, t) = one_task();
    let g1 = h.request("w1", 1, 1);
    let g2 = h.request("w2", 1, 1);
    assert_eq!(g1.len(), 1);
    assert!(g2.is_empty(), "one task is offered to one worker at a time");
    // w2 tries to take w1's grant.
    let stolen = h.accept("w2", 1, g1[0].0);
    assert!(matches!(stolen, Err(Rejection::GrantNotYours { .. })));
    // w1 is too slow; the grant expires and w2, still waiting, gets it.
    let effects = h.tick(1_000);
    let g2 = grants_for(&effects, "w2");
    assert_eq!(g2.len(), 1);
    assert!(h.accept("w1", 1, g1[0].0).is_err());
    let f = h.accept("w2", 1, g2[0].0).unwrap();
    assert_eq!(f.task, t);
    let dup = h.worker("w2", 1, WorkerCommand::AcceptGrant { grant: g2[0].0 });
    assert!(matches!(
        accepted(&dup),
        Accepted::LeaseStarted {
            duplicate: true,
            ..
        }
    ));
}

#[test]
fn offers_never_exceed_worker_concurrency() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 3).unwrap();
    h.submit(job("j", &["a", "b", "c", "d", "e"])).unwrap();
    let grants = h.request("w", 1, 10);
    assert_eq!(grants.len(), 3);
    let f = h.accept("w", 1, grants[0].0).unwrap();
    assert!(h.request("w", 1, 10).is_empty(), "full");
    // The outstanding credits are served as soon as a slot frees.
    let out = h.complete("w", 1, f);
    assert_eq!(grants_for(&out.effects, "w").len(), 1);
    assert_eq!(
        h.engine.workers()[0].grants + h.engine.workers()[0].leases.len() as u32,
        3
    );
}

#[test]
fn credits_carry_over_to_tasks_that_arrive_later() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 4).unwrap();
    assert!(h.request("w", 1, 2).is_empty());
    let out = h.apply(Input::Client(ClientCommand::SubmitJob(job(
        "j",
        &["a", "b", "c"],
    ))));
    assert_eq!(
        grants_for(&out.effects, "w").len(),
        2,
        "two outstanding credits"
    );
}
