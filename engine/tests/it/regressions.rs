//! Minimal input sequences that once exposed an engine defect, kept so the defect stays
//! fixed. Tests for defects not yet fixed are ignored with the defect named.

use keel_engine::*;

fn worker_input(cmd: WorkerCommand) -> Input {
    Input::worker(&WorkerId::new("w1"), InstanceId::new(1), cmd)
}

/// One worker holding the lease on the single task of a job whose attempts time out
/// after 100 ms. Returns the engine and the lease's fence.
fn running_task_with_attempt_timeout() -> (Engine, Fence) {
    let mut e = Engine::new(Config::default());
    let reg = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 1,
    };
    e.apply(0, worker_input(reg));
    let mut task = TaskSpec::new("a");
    task.attempt_timeout_ms = Some(100);
    let job = JobSpec::new("j", vec![task]);
    e.apply(0, Input::Client(ClientCommand::SubmitJob(job)));
    let out = e.apply(0, worker_input(WorkerCommand::RequestWork { credits: 1 }));
    let grant = match &out.effects[..] {
        [Effect::GrantOffered { grant, .. }] => *grant,
        other => panic!("expected one grant, got {other:?}"),
    };
    let out = e.apply(0, worker_input(WorkerCommand::AcceptGrant { grant }));
    let Some(Ok(Accepted::LeaseStarted { fence, .. })) = out.reply else {
        panic!("accept failed: {out:?}");
    };
    let out = e.apply(100, Input::Tick);
    assert!(
        out.effects.iter().any(|e| matches!(
            e,
            Effect::LeaseRevoked { reason: EndReason::AttemptTimedOut, fence: f, .. } if *f == fence
        )),
        "the attempt should time out: {out:?}"
    );
    (e, fence)
}

/// A worker whose attempt was revoked for timing out never reported a failure, so its
/// late `Fail` must be refused like any other command on a revoked fence (a late
/// `Complete` is refused with `StaleFence`). The engine used to answer
/// `Failed { duplicate: true }`, telling the worker its failure report had already been
/// accepted, because `ended_attempt` matched the `AttemptEnd::Failed` record that the
/// timeout wrote without knowing the worker never sent it.
#[test]
fn fail_after_attempt_timeout_is_refused_as_stale() {
    let (mut e, fence) = running_task_with_attempt_timeout();
    let fail = WorkerCommand::Fail {
        fence,
        error: "late".into(),
        permanent: false,
    };
    let out = e.apply(100, worker_input(fail));
    assert!(
        matches!(out.reply, Some(Err(Rejection::StaleFence { .. }))),
        "late failure after timeout answered {:?}",
        out.reply
    );
}

/// The same late report as a completion is refused; this is the behaviour the failure
/// path should match, and it must keep holding.
#[test]
fn complete_after_attempt_timeout_is_refused_as_stale() {
    let (mut e, fence) = running_task_with_attempt_timeout();
    let done = WorkerCommand::Complete {
        fence,
        output: Payload::default(),
    };
    let out = e.apply(100, worker_input(done));
    assert!(
        matches!(out.reply, Some(Err(Rejection::StaleFence { .. }))),
        "late completion after timeout answered {:?}",
        out.reply
    );
}

/// A worker holding an unaccepted grant is blacklisted in the same millisecond the grant
/// was offered. The invariant checker used to tell an old offer from a forbidden new one
/// by `offered_at < blacklisted_since`, which cannot order two events of one
/// millisecond, so `check_invariants` reported "grant offered to blacklisted worker" for
/// a grant offered before the blacklist began, and `restore` refused a snapshot of this
/// legitimate state, so a coordinator could not have recovered from it.
#[test]
fn grant_offered_in_the_millisecond_a_blacklist_starts_is_not_a_violation() {
    let config = Config {
        blacklist: BlacklistPolicy {
            threshold: 2,
            ..BlacklistPolicy::default()
        },
        ..Config::default()
    };
    let mut e = Engine::new(config);
    let reg = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 3,
    };
    e.apply(0, worker_input(reg));
    let mut tasks: Vec<TaskSpec> = ["a", "b", "c"].into_iter().map(TaskSpec::new).collect();
    for t in &mut tasks {
        t.retry.max_attempts = 1;
    }
    let job = JobSpec::new("j", tasks);
    e.apply(0, Input::Client(ClientCommand::SubmitJob(job)));
    let out = e.apply(0, worker_input(WorkerCommand::RequestWork { credits: 3 }));
    let grants: Vec<GrantId> = out
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::GrantOffered { grant, .. } => Some(*grant),
            _ => None,
        })
        .collect();
    assert_eq!(grants.len(), 3, "{out:?}");
    for &grant in &grants[..2] {
        let out = e.apply(0, worker_input(WorkerCommand::AcceptGrant { grant }));
        let Some(Ok(Accepted::LeaseStarted { fence, .. })) = out.reply else {
            panic!("accept failed: {out:?}");
        };
        let fail = WorkerCommand::Fail {
            fence,
            error: "boom".into(),
            permanent: false,
        };
        e.apply(0, worker_input(fail));
    }
    assert!(
        e.workers()[0].blacklisted_until.is_some(),
        "two failures should blacklist w1"
    );
    assert_eq!(e.check_invariants(), Ok(()));
    assert!(Engine::restore(&e.snapshot()).is_ok());
}

/// A retry policy whose backoff and cap are near `u64::MAX` ms with `jitter_pct = 100`
/// (accepted by the job-file loader and by `keel plan`). Once the delay reached
/// `u64::MAX` the jitter span equalled it, so `r % (span + 1)` overflowed `span + 1` to
/// 0: "attempt to add with overflow" with overflow checks, a remainder by zero without.
/// The coordinator's engine task died on the worker's `Fail`, and again when recovery
/// replayed it.
#[test]
fn retry_with_backoff_near_u64_max_and_full_jitter_does_not_panic() {
    let mut e = Engine::new(Config::default());
    let mut log: Vec<(Time, Input)> = Vec::new();
    let mut apply = |e: &mut Engine, now: Time, input: Input| {
        log.push((now, input.clone()));
        e.apply(now, input)
    };
    let mut task = TaskSpec::new("a");
    task.retry = RetryPolicy {
        max_attempts: 3,
        backoff_base_ms: u64::MAX - 1,
        backoff_factor: 2,
        backoff_max_ms: u64::MAX,
        jitter_pct: 100,
    };
    let job = JobSpec::new("j", vec![task]);
    apply(&mut e, 0, Input::Client(ClientCommand::SubmitJob(job)));
    let mut now = 1;
    // The first failure backs off `u64::MAX - 1` ms, the second `u64::MAX` ms. The
    // worker is lost while the clock jumps, so a new instance serves each attempt.
    for failure in 1..=2u64 {
        let as_instance = |cmd| Input::worker(&WorkerId::new("w1"), InstanceId::new(failure), cmd);
        let reg = WorkerCommand::Register {
            capabilities: vec![],
            lanes: vec![],
            max_concurrency: 1,
        };
        apply(&mut e, now, as_instance(reg));
        let out = apply(
            &mut e,
            now,
            as_instance(WorkerCommand::RequestWork { credits: 1 }),
        );
        let [Effect::GrantOffered { grant, .. }] = out.effects[..] else {
            panic!("expected one grant, got {out:?}");
        };
        let out = apply(
            &mut e,
            now,
            as_instance(WorkerCommand::AcceptGrant { grant }),
        );
        let Some(Ok(Accepted::LeaseStarted { fence, .. })) = out.reply else {
            panic!("accept failed: {out:?}");
        };
        let fail = WorkerCommand::Fail {
            fence,
            error: "boom".into(),
            permanent: false,
        };
        let out = apply(&mut e, now, as_instance(fail));
        let Some(Ok(Accepted::Failed {
            retry_at: Some(at), ..
        })) = out.reply
        else {
            panic!("failure {failure} should schedule a retry: {out:?}");
        };
        assert!(at >= now, "the retry is not scheduled in the past: {at}");
        assert_eq!(e.check_invariants(), Ok(()));
        now = at;
    }
    // Recovery replays the same inputs; it must reach the same state.
    let mut replayed = Engine::new(Config::default());
    for (now, input) in log {
        replayed.apply(now, input);
    }
    assert_eq!(replayed.digest(), e.digest());
    let restored = Engine::restore(&e.snapshot()).expect("restores");
    assert_eq!(restored.digest(), e.digest());
}
