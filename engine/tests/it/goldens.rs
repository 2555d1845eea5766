//! Golden traces of canonical engine sessions, stored under the top-level snapshots/
//! folder. Each trace is also checked for its key facts in code, so a golden accepted
//! with a wrong behaviour in it still fails here.

#[path = "../golden/script.rs"]
mod script;

use keel_engine::*;
use script::{offers, Script};

fn golden(name: &str, text: &str) {
    insta::with_settings!({snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(format!("engine__{name}"), text);
    });
}

fn request(credits: u32) -> WorkerCommand {
    WorkerCommand::RequestWork { credits }
}

fn one_offer(out: &Outputs) -> (String, GrantId, TaskId, u32) {
    match &offers(out)[..] {
        [one] => one.clone(),
        other => panic!("expected one offer, got {other:?}"),
    }
}

fn has(out: &Outputs, want: impl Fn(&Effect) -> bool) -> bool {
    out.effects.iter().any(want)
}

/// A worker goes silent while holding a lease. It is declared lost, its task is
/// requeued as attempt 2 and granted to the other worker, the zombie's late completion
/// is refused, and the loss does not count against the task's retry budget.
#[test]
fn stale_worker_requeue() {
    let mut s = Script::new(Config::default());
    s.at(0).register("w1", 1, &[], 1);
    s.worker("w1", request(1));
    let out = s.submit(JobSpec::new("etl", vec![TaskSpec::new("extract")]));
    let (_, g1, task, _) = one_offer(&out);
    s.register("w2", 1, &[], 1);
    s.worker("w2", request(1));
    let f1 = s.at(1_000).accept("w1", g1);
    s.at(10_000).worker("w2", WorkerCommand::Heartbeat);
    let lost = s.at(16_000).tick();
    assert!(has(
        &lost,
        |e| matches!(e, Effect::WorkerLost { worker, .. } if worker.as_str() == "w1")
    ));
    assert!(has(&lost, |e| matches!(e,
        Effect::TaskRequeued { task: t, attempt: 2, reason: EndReason::WorkerLost, .. } if *t == task)));
    let (to, g2, _, attempt) = one_offer(&lost);
    assert_eq!((to.as_str(), attempt), ("w2", 2));
    let f2 = s.accept("w2", g2);
    assert_eq!((f2.attempt, f2.epoch), (2, 2));
    let zombie = s.at(17_000).complete("w1", f1);
    assert!(matches!(
        zombie.reply,
        Some(Err(Rejection::WorkerLost { .. }))
    ));
    let done = s.at(18_000).complete("w2", f2);
    assert!(has(&done, |e| matches!(
        e,
        Effect::JobFinished {
            outcome: JobOutcome::Succeeded,
            ..
        }
    )));
    let view = s.engine.describe_task(task).unwrap();
    assert_eq!((view.attempt, view.failures, view.losses), (2, 0, 1));
    golden("stale_worker_requeue", &s.text);
}

/// Two failures within the window blacklist the worker: the retried task becomes ready
/// but is not offered to it until the cooldown ends, then it is offered at once.
#[test]
fn blacklist_and_readmission() {
    let config = Config {
        liveness_timeout_ms: 60_000,
        blacklist: BlacklistPolicy {
            threshold: 2,
            window_ms: 60_000,
            cooldown_ms: 10_000,
        },
        ..Config::default()
    };
    let mut s = Script::new(config);
    let mut task = TaskSpec::new("flaky");
    task.retry.jitter_pct = 0;
    s.at(0).register("w1", 1, &[], 1);
    s.worker("w1", request(1));
    let (_, g1, tid, _) = one_offer(&s.submit(JobSpec::new("nightly", vec![task])));
    let f1 = s.accept("w1", g1);
    s.at(100).fail("w1", f1, false);
    let (_, g2, _, attempt) = one_offer(&s.at(1_100).worker("w1", request(1)));
    assert_eq!(attempt, 2);
    let f2 = s.accept("w1", g2);
    let out = s.at(1_200).fail("w1", f2, false);
    assert!(has(&out, |e| matches!(
        e,
        Effect::WorkerBlacklisted { until: 11_200, .. }
    )));
    let out = s.at(3_200).worker("w1", request(1));
    assert!(offers(&out).is_empty(), "offered to a blacklisted worker");
    assert_eq!(
        s.engine.describe_task(tid).unwrap().status,
        TaskStatus::Queued
    );
    let out = s.at(11_200).tick();
    assert!(has(&out, |e| matches!(e, Effect::WorkerReadmitted { .. })));
    let (_, g3, _, attempt) = one_offer(&out);
    assert_eq!(attempt, 3);
    let f3 = s.accept("w1", g3);
    s.at(11_300).complete("w1", f3);
    let view = s.engine.describe_task(tid).unwrap();
    assert_eq!((view.failures, view.losses), (2, 0));
    assert_eq!(view.status, TaskStatus::Done(TaskOutcome::Succeeded));
    golden("blacklist_and_readmission", &s.text);
}

/// A worker stops renewing; its lease expires and the task runs again elsewhere. When
/// the paused worker wakes up, its completion and renewal carry the old fence and are
/// refused, while the new holder's completion is accepted once and then deduplicated.
#[test]
fn zombie_completion_rejected() {
    let config = Config {
        liveness_timeout_ms: 60_000,
        ..Config::default()
    };
    let mut s = Script::new(config);
    s.at(0).register("w1", 1, &[], 1);
    s.register("w2", 1, &[], 1);
    s.worker("w1", request(1));
    let (_, g1, tid, _) =
        one_offer(&s.submit(JobSpec::new("report", vec![TaskSpec::new("render")])));
    s.worker("w2", request(1));
    let f1 = s.accept("w1", g1);
    s.at(20_000)
        .worker("w1", WorkerCommand::Renew { fence: f1 });
    let out = s.at(50_000).tick();
    assert!(has(&out, |e| matches!(e,
        Effect::LeaseRevoked { fence, reason: EndReason::LeaseExpired, .. } if *fence == f1)));
    let (to, g2, _, attempt) = one_offer(&out);
    assert_eq!((to.as_str(), attempt), ("w2", 2));
    let f2 = s.accept("w2", g2);
    let zombie = s.at(51_000).complete("w1", f1);
    assert!(matches!(
        zombie.reply,
        Some(Err(Rejection::StaleFence {
            attempt_seen: 1,
            attempt_current: 2,
            epoch_current: 2,
            ..
        }))
    ));
    let renew = s.worker("w1", WorkerCommand::Renew { fence: f1 });
    assert!(matches!(
        renew.reply,
        Some(Err(Rejection::StaleFence { .. }))
    ));
    let first = s.at(52_000).complete("w2", f2);
    let again = s.complete("w2", f2);
    assert!(matches!(
        first.reply,
        Some(Ok(Accepted::Completed {
            duplicate: false,
            ..
        }))
    ));
    assert!(matches!(
        again.reply,
        Some(Ok(Accepted::Completed {
            duplicate: true,
            ..
        }))
    ));
    assert!(
        again.effects.is_empty(),
        "a duplicate completion has effects"
    );
    let view = s.engine.describe_task(tid).unwrap();
    assert_eq!(view.attempts.len(), 2);
    assert_eq!(view.attempts[0].end.as_deref(), Some("lease_expired"));
    assert_eq!(view.attempts[1].worker, WorkerId::new("w2"));
    golden("zombie_completion_rejected", &s.text);
}

/// An offer nobody accepts expires and the task returns to the queue; the late accept
/// is refused; a released offer returns it too. Neither starts a new attempt.
#[test]
fn grant_expiry() {
    let mut s = Script::new(Config::default());
    s.at(0).register("w1", 1, &[], 2);
    s.worker("w1", request(1));
    let (_, g1, tid, _) =
        one_offer(&s.submit(JobSpec::new("thumbs", vec![TaskSpec::new("resize")])));
    let out = s.at(5_000).tick();
    assert!(has(&out, |e| matches!(e,
        Effect::GrantWithdrawn { grant, reason: EndReason::GrantExpired, .. } if *grant == g1)));
    assert!(offers(&out).is_empty(), "w1 had no credits left");
    let late = s
        .at(5_001)
        .worker("w1", WorkerCommand::AcceptGrant { grant: g1 });
    assert_eq!(late.reply, Some(Err(Rejection::UnknownGrant { grant: g1 })));
    let (_, g2, _, attempt) = one_offer(&s.worker("w1", request(1)));
    assert_eq!(attempt, 1);
    s.worker("w1", WorkerCommand::ReleaseGrant { grant: g2 });
    assert_eq!(
        s.engine.describe_task(tid).unwrap().status,
        TaskStatus::Queued
    );
    let (_, g3, _, attempt) = one_offer(&s.at(6_000).worker("w1", request(1)));
    assert_eq!(attempt, 1);
    let f = s.accept("w1", g3);
    assert_eq!((f.attempt, f.epoch), (1, 1));
    s.at(7_000).complete("w1", f);
    golden("grant_expiry", &s.text);
}

/// Tasks requiring capabilities no live worker has are reported blocked, unblocked when
/// a worker with them registers, blocked again when it drains, and finally run on a
/// worker advertising all of them; the worker lacking them is never offered one.
#[test]
fn capability_blocked_unblocked() {
    let mut s = Script::new(Config::default());
    s.at(0).register("w1", 1, &["ssd"], 2);
    s.worker("w1", request(2));
    let job = JobSpec::new(
        "train",
        vec![
            TaskSpec::new("fit").requires(&["gpu"]),
            TaskSpec::new("eval").requires(&["gpu", "ssd"]),
        ],
    );
    let out = s.submit(job);
    let blocked = |out: &Outputs| {
        out.effects
            .iter()
            .filter(|e| matches!(e, Effect::TaskBlocked { .. }))
            .count()
    };
    let unblocked = |out: &Outputs| {
        out.effects
            .iter()
            .filter(|e| matches!(e, Effect::TaskUnblocked { .. }))
            .count()
    };
    assert_eq!(blocked(&out), 2);
    assert!(offers(&out).is_empty());
    let out = s.at(1_000).register("w2", 1, &["gpu"], 1);
    assert_eq!(unblocked(&out), 1, "only fit is runnable on gpu alone");
    let out = s.worker("w2", WorkerCommand::Drain);
    assert_eq!(blocked(&out), 1, "fit loses its only worker");
    let out = s.at(2_000).register("w3", 1, &["gpu", "ssd"], 2);
    assert_eq!(unblocked(&out), 2);
    assert!(offers(&out).is_empty(), "w1 lacks gpu, w3 has not asked");
    let out = s.worker("w3", request(2));
    let got = offers(&out);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(w, ..)| w == "w3"));
    let fences: Vec<Fence> = got.iter().map(|(_, g, ..)| s.accept("w3", *g)).collect();
    s.at(3_000);
    let last = fences.iter().map(|f| s.complete("w3", *f)).last().unwrap();
    assert!(has(&last, |e| matches!(
        e,
        Effect::JobFinished {
            outcome: JobOutcome::Succeeded,
            ..
        }
    )));
    golden("capability_blocked_unblocked", &s.text);
}

/// Three roots feed a quorum of two, an all-of and an any-of. The first root fails
/// (allowed): the all-of is skipped at once, the any-of runs after the second root, and
/// the quorum only after the third; the job still succeeds.
#[test]
fn dag_quorum() {
    let mut s = Script::new(Config::default());
    s.at(0).register("w1", 1, &[], 3);
    s.worker("w1", request(3));
    let mut a = TaskSpec::new("a");
    a.allow_failure = true;
    let job = JobSpec::new(
        "fan-in",
        vec![
            a,
            TaskSpec::new("b"),
            TaskSpec::new("c"),
            TaskSpec::new("quorum").after(GroupKind::Quorum(2), &["a", "b", "c"]),
            TaskSpec::new("all").after(GroupKind::AllOf, &["a", "b", "c"]),
            TaskSpec::new("any").after(GroupKind::AnyOf, &["a", "b"]),
        ],
    );
    let out = s.submit(job);
    let roots = offers(&out);
    assert_eq!(roots.len(), 3);
    let f: Vec<Fence> = roots.iter().map(|(_, g, ..)| s.accept("w1", *g)).collect();
    let (quorum, all, any) = (
        TaskId::new(f[0].task.get() + 3),
        TaskId::new(f[0].task.get() + 4),
        TaskId::new(f[0].task.get() + 5),
    );
    let out = s.at(100).fail("w1", f[0], true);
    assert!(has(&out, |e| matches!(e,
        Effect::TaskFinished { task, outcome: TaskOutcome::Skipped, .. } if *task == all)));
    s.at(200).complete("w1", f[1]);
    let (_, g_any, t, _) = one_offer(&s.worker("w1", request(3)));
    assert_eq!(
        t, any,
        "any-of runs after one success; the quorum still waits"
    );
    let out = s.at(300).complete("w1", f[2]);
    let (_, g_quorum, t, _) = one_offer(&out);
    assert_eq!(t, quorum, "the quorum is ready once two roots succeeded");
    let fa = s.accept("w1", g_any);
    let fq = s.accept("w1", g_quorum);
    s.at(400).complete("w1", fa);
    let last = s.complete("w1", fq);
    assert!(has(&last, |e| matches!(
        e,
        Effect::JobFinished {
            outcome: JobOutcome::Succeeded,
            ..
        }
    )));
    golden("dag_quorum", &s.text);
}
