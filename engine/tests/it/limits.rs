//! One test per limit on hostile input: each refusal is typed, and a refused command
//! leaves the engine exactly as it was. Every command in a test is applied at the same
//! logical time, so the digest (which includes the clock) may be compared directly.

use keel_engine::*;
use keel_engine_harness::*;

#[test]
fn tasks_per_job() {
    let mut t = FixedTime::new(limits(|l| l.max_tasks_per_job = 3));
    let e = invalid(t.refused(submit(JobSpec::new("j", numbered(4)))));
    assert_eq!(e, JobError::TooManyTasks { count: 4, limit: 3 });
    assert!(t.engine.jobs().is_empty() && t.engine.job_by_name("j").is_none());
    t.accepted(submit(JobSpec::new("j", numbered(3))));
}

#[test]
fn dependencies_per_task() {
    let mut t = FixedTime::new(limits(|l| l.max_deps_per_task = 2));
    let mut spec = numbered(3);
    spec.push(TaskSpec::new("d").after(GroupKind::AllOf, &["t0", "t1", "t2"]));
    let e = invalid(t.refused(submit(JobSpec::new("j", spec.clone()))));
    assert_eq!(
        e,
        JobError::TooManyDependencies {
            task: "d".into(),
            count: 3,
            limit: 2
        }
    );
    assert!(t.engine.jobs().is_empty());
    spec[3] = TaskSpec::new("d").after(GroupKind::AllOf, &["t0", "t1"]);
    t.accepted(submit(JobSpec::new("j", spec)));
}

/// Each bound admits its own value: a name of exactly the length limit, and a quorum
/// of every task in its group.
#[test]
fn a_bound_admits_its_own_value() {
    let len = Config::MIN_NAME_LEN.max(16);
    let mut t = FixedTime::new(limits(|l| l.max_name_len = len));
    let name = |n: u32| "n".repeat(n as usize);
    let e = invalid(t.refused(submit(JobSpec::new(name(len + 1), numbered(1)))));
    assert!(matches!(e, JobError::BadName { .. }), "{e:?}");
    t.accepted(submit(JobSpec::new(name(len), numbered(1))));
    let mut all = numbered(3);
    all.push(TaskSpec::new("q").after(GroupKind::Quorum(3), &["t0", "t1", "t2"]));
    t.accepted(submit(JobSpec::new("quorum", all)));
}

#[test]
fn dag_depth() {
    let mut t = FixedTime::new(limits(|l| l.max_dag_depth = 3));
    let e = invalid(t.refused(submit(JobSpec::new("j", chain(4)))));
    assert_eq!(
        e,
        JobError::TooDeep {
            task: "t3".into(),
            depth: 4,
            limit: 3
        }
    );
    assert!(t.engine.jobs().is_empty());
    t.accepted(submit(JobSpec::new("j", chain(3))));
}

#[test]
fn payload_bytes_of_tasks_errors_and_signals() {
    let mut t = FixedTime::new(limits(|l| l.max_payload_bytes = 8));
    let mut big = TaskSpec::new("a");
    big.payload = Payload::from("123456789");
    let e = invalid(t.refused(submit(JobSpec::new("big", vec![big]))));
    assert_eq!(
        e,
        JobError::PayloadTooLarge {
            task: "a".into(),
            bytes: 9,
            limit: 8
        }
    );
    assert!(t.engine.jobs().is_empty());

    t.accepted(submit(JobSpec::new("j", numbered(1))));
    // An output over the limit fails its attempt (tests/output_limits.rs).
    let fence = t.lease("w");
    let error = "123456789".to_string();
    let fail = WorkerCommand::Fail {
        fence,
        error,
        permanent: true,
    };
    let r = t.refused(t.cmd("w", fail));
    assert_eq!(
        r,
        Rejection::TooLarge {
            field: "error".into(),
            size: 9,
            limit: 8
        }
    );
    assert!(matches!(
        t.engine.describe_task(fence.task).unwrap().status,
        TaskStatus::Running { .. }
    ));

    let suspend = WorkerCommand::Suspend {
        fence,
        waitpoint: "wp".into(),
        timeout_ms: None,
        on_timeout: SuspendTimeout::Fail,
    };
    t.accepted(t.cmd("w", suspend));
    let signal = ClientCommand::Signal {
        task: fence.task,
        waitpoint: "wp".into(),
        idempotency_key: "k".into(),
        payload: Payload::from("123456789"),
    };
    let r = t.refused(Input::Client(signal));
    assert_eq!(
        r,
        Rejection::TooLarge {
            field: "signal payload".into(),
            size: 9,
            limit: 8
        }
    );
    let at_limit = ClientCommand::Signal {
        task: fence.task,
        waitpoint: "wp".into(),
        idempotency_key: "k".into(),
        payload: Payload::from("12345678"),
    };
    t.accepted(Input::Client(at_limit));
}

#[test]
fn an_error_exactly_at_the_payload_limit_is_taken() {
    let mut t = FixedTime::new(limits(|l| l.max_payload_bytes = 8));
    t.accepted(submit(JobSpec::new("j", numbered(1))));
    let fence = t.lease("w");
    let fail = WorkerCommand::Fail {
        fence,
        error: "12345678".into(),
        permanent: true,
    };
    t.accepted(t.cmd("w", fail));
    assert!(matches!(
        t.engine.describe_task(fence.task).unwrap().status,
        TaskStatus::Done(TaskOutcome::Failed { .. })
    ));
}

#[test]
fn capabilities_per_worker() {
    let mut t = FixedTime::new(limits(|l| l.max_caps_per_worker = 2));
    let reg = t.register("w", &["a", "b", "c"], 1);
    match t.refused(reg) {
        Rejection::InvalidWorker { worker, why } => {
            assert_eq!(worker, WorkerId::new("w"));
            assert!(why.contains("3 capabilities, limit 2"), "{why}");
        }
        other => panic!("expected an invalid worker, got {other:?}"),
    }
    assert!(t.engine.workers().is_empty());
    let reg = t.register("w", &["a", "b"], 1);
    t.accepted(reg);
}

#[test]
fn capabilities_per_task() {
    let mut t = FixedTime::new(limits(|l| l.max_caps_per_task = 1));
    let spec = JobSpec::new("j", vec![TaskSpec::new("a").requires(&["gpu", "ssd"])]);
    let e = invalid(t.refused(submit(spec)));
    assert_eq!(
        e,
        JobError::TooManyCapabilities {
            task: "a".into(),
            count: 2,
            limit: 1
        }
    );
    assert!(t.engine.jobs().is_empty());
    t.accepted(submit(JobSpec::new(
        "j",
        vec![TaskSpec::new("a").requires(&["gpu"])],
    )));
}

#[test]
fn capability_token_length_for_workers_and_tasks() {
    let mut t = FixedTime::new(limits(|l| l.max_cap_token_len = 4));
    let reg = t.register("w", &["abcde"], 1);
    let r = t.refused(reg);
    let too_long = CapabilityIssue::TooLong { limit: 4 };
    assert_eq!(
        r,
        Rejection::CapabilityToken {
            token: "abcde".into(),
            why: too_long.clone()
        }
    );
    assert!(t.engine.workers().is_empty());
    let spec = JobSpec::new("j", vec![TaskSpec::new("a").requires(&["abcde"])]);
    let e = invalid(t.refused(submit(spec)));
    assert_eq!(
        e,
        JobError::Capability {
            task: "a".into(),
            token: "abcde".into(),
            why: too_long
        }
    );
    assert!(t.engine.jobs().is_empty());
    let reg = t.register("w", &["abcd"], 1);
    t.accepted(reg);
}

#[test]
fn jobs_in_flight_per_tenant() {
    let mut t = FixedTime::new(limits(|l| l.max_jobs_in_flight_per_tenant = 2));
    let job = |name: &str, tenant: &str| {
        let mut spec = JobSpec::new(name, numbered(1));
        spec.tenant = tenant.into();
        submit(spec)
    };
    t.accepted(job("a", "acme"));
    let (first, _) = t.accepted(job("b", "acme"));
    let r = t.refused(job("c", "acme"));
    assert_eq!(
        r,
        Rejection::TenantJobLimit {
            tenant: "acme".into(),
            limit: 2
        }
    );
    assert!(r.retryable());
    assert!(t.engine.job_by_name("c").is_none());
    t.accepted(job("c", "other"));
    let Accepted::JobSubmitted { job: b, .. } = first else {
        unreachable!()
    };
    t.accepted(Input::Client(ClientCommand::CancelJob { job: b }));
    t.accepted(job("c2", "acme"));
}

#[test]
fn registered_workers() {
    let mut t = FixedTime::new(limits(|l| l.max_workers = 2));
    for w in ["a", "b"] {
        let reg = t.register(w, &[], 1);
        t.accepted(reg);
    }
    let reg = t.register("c", &[], 1);
    assert_eq!(t.refused(reg), Rejection::TooManyWorkers { limit: 2 });
    assert_eq!(t.engine.workers().len(), 2);
    // A known worker re-registering, or coming back as a new instance, is not a new one.
    let again = t.register("a", &[], 1);
    t.accepted(again);
    let cmd = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 1,
    };
    t.accepted(Input::worker(&WorkerId::new("b"), InstanceId::new(2), cmd));
    t.accepted(t.cmd("a", WorkerCommand::Deregister));
    let reg = t.register("c", &[], 1);
    t.accepted(reg);
}

#[test]
fn pending_grant_offers_per_worker() {
    let mut t = FixedTime::new(limits(|l| l.max_pending_grants_per_worker = 2));
    t.accepted(submit(JobSpec::new("j", numbered(5))));
    let reg = t.register("w", &[], 8);
    t.accepted(reg);
    let r = t.refused(t.cmd("w", WorkerCommand::RequestWork { credits: 3 }));
    assert_eq!(
        r,
        Rejection::TooLarge {
            field: "credits".into(),
            size: 3,
            limit: 2
        }
    );
    assert_eq!(t.engine.queued(), 5);
    let (_, effects) = t.accepted(t.cmd("w", WorkerCommand::RequestWork { credits: 2 }));
    let offers = effects
        .iter()
        .filter(|f| matches!(f, Effect::GrantOffered { .. }))
        .count();
    assert_eq!(offers, 2);
    assert_eq!(t.engine.workers()[0].grants, 2);
}

#[test]
fn signals_per_task() {
    let mut t = FixedTime::new(limits(|l| l.max_signals_per_task = 2));
    t.accepted(submit(JobSpec::new("j", numbered(1))));
    let signal = |task, key: &str| {
        Input::Client(ClientCommand::Signal {
            task,
            waitpoint: "wp".into(),
            idempotency_key: key.into(),
            payload: Payload::default(),
        })
    };
    let mut task = None;
    for key in ["k1", "k2", "k3"] {
        let fence = if key == "k1" {
            t.lease("w")
        } else {
            regrant(&mut t)
        };
        task = Some(fence.task);
        let suspend = WorkerCommand::Suspend {
            fence,
            waitpoint: "wp".into(),
            timeout_ms: None,
            on_timeout: SuspendTimeout::Fail,
        };
        t.accepted(t.cmd("w", suspend));
        if key != "k3" {
            t.accepted(signal(fence.task, key));
        }
    }
    let task = task.unwrap();
    let r = t.refused(signal(task, "k3"));
    assert_eq!(r, Rejection::TooManySignals { task, limit: 2 });
    assert!(matches!(
        t.engine.describe_task(task).unwrap().status,
        TaskStatus::Suspended { .. }
    ));
    // A replayed signal is still answered as the duplicate it is.
    let (reply, _) = t.accepted(signal(task, "k1"));
    assert_eq!(
        reply,
        Accepted::Signalled {
            task,
            resumed: false,
            duplicate: true
        }
    );
}

/// The registered worker `w` asks for one more task and starts its lease.
fn regrant(t: &mut FixedTime) -> Fence {
    let (_, effects) = t.accepted(t.cmd("w", WorkerCommand::RequestWork { credits: 1 }));
    let grant = effects
        .iter()
        .find_map(|f| match f {
            Effect::GrantOffered { grant, .. } => Some(*grant),
            _ => None,
        })
        .expect("the resumed task is offered again");
    match t
        .accepted(t.cmd("w", WorkerCommand::AcceptGrant { grant }))
        .0
    {
        Accepted::LeaseStarted { fence, .. } => fence,
        other => panic!("expected a lease, got {other:?}"),
    }
}

#[test]
fn signal_keys_are_bounded_like_names() {
    let mut t = FixedTime::new(limits(|l| l.max_name_len = 16));
    t.accepted(submit(JobSpec::new("j", numbered(1))));
    let fence = t.lease("w");
    let suspend = WorkerCommand::Suspend {
        fence,
        waitpoint: "wp".into(),
        timeout_ms: None,
        on_timeout: SuspendTimeout::Fail,
    };
    t.accepted(t.cmd("w", suspend));
    let signal = ClientCommand::Signal {
        task: fence.task,
        waitpoint: "wp".into(),
        idempotency_key: "k".repeat(100_000),
        payload: Payload::default(),
    };
    t.refused(Input::Client(signal));
}

#[test]
fn lost_workers_do_not_accumulate() {
    let mut config = limits(|l| l.max_workers = 2);
    config.liveness_timeout_ms = 100;
    let mut e = Engine::new(config);
    let mut now = 0;
    for round in 0..10 {
        for w in 0..2 {
            let cmd = WorkerCommand::Register {
                capabilities: vec![],
                lanes: vec![],
                max_concurrency: 1,
            };
            let name = WorkerId::new(format!("w{round}-{w}"));
            let out = e.apply(now, Input::worker(&name, InstanceId::new(1), cmd));
            assert!(matches!(out.reply, Some(Ok(_))), "{:?}", out.reply);
        }
        now += 1_000;
        e.apply(now, Input::Tick);
    }
    assert!(
        e.workers().len() <= 2,
        "{} worker records kept",
        e.workers().len()
    );
}
