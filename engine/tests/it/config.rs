//! Configuration floors: a configuration that would leave a cluster unable to run
//! anything (zero timeouts, limits of zero) is refused by `Config::validate`, by
//! `Engine::try_new`, and by `restore` when a snapshot carries it.

use keel_engine::*;

fn zero_grant_ttl() -> Config {
    Config {
        grant_ttl_ms: 0,
        ..Config::default()
    }
}

#[test]
fn try_new_refuses_a_zero_grant_ttl_naming_the_field_and_floor() {
    let e = Engine::try_new(zero_grant_ttl()).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.value, e.floor, e.unit),
        ("grant_ttl_ms", 0, 100, Unit::Ms)
    );
    assert_eq!(e.to_string(), "grant_ttl_ms must be at least 100 ms");
    assert!(Engine::try_new(Config::default()).is_ok());
}

#[test]
fn each_timeout_has_its_floor() {
    for (field, floor, set) in [
        (
            "grant_ttl_ms",
            Config::MIN_GRANT_TTL_MS,
            (|c: &mut Config, v| c.grant_ttl_ms = v) as fn(&mut Config, u64),
        ),
        ("lease_ttl_ms", Config::MIN_LEASE_TTL_MS, |c, v| {
            c.lease_ttl_ms = v
        }),
        (
            "liveness_timeout_ms",
            Config::MIN_LIVENESS_TIMEOUT_MS,
            |c, v| c.liveness_timeout_ms = v,
        ),
        ("retention_ms", Config::MIN_RETENTION_MS, |c, v| {
            c.retention_ms = v
        }),
    ] {
        let mut c = Config::default();
        set(&mut c, floor - 1);
        let e = c.validate().unwrap_err();
        assert_eq!((e.field.as_str(), e.floor), (field, floor));
        set(&mut c, floor);
        assert_eq!(c.validate(), Ok(()), "{field} at its floor");
        set(&mut c, u64::MAX);
        assert_eq!(c.validate(), Ok(()), "{field} at u64::MAX saturates");
    }
}

/// A zero grant TTL offers a task and withdraws the offer before any worker can
/// accept it: the job never starts. This is what the floor prevents.
#[test]
fn a_zero_grant_ttl_would_leave_every_job_queued() {
    let mut e = Engine::new(zero_grant_ttl());
    let w = WorkerId::new("w");
    let reg = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 1,
    };
    e.apply(0, Input::worker(&w, InstanceId::new(1), reg));
    let job = JobSpec::new("j", vec![TaskSpec::new("a")]);
    e.apply(0, Input::Client(ClientCommand::SubmitJob(job)));
    let out = e.apply(
        0,
        Input::worker(
            &w,
            InstanceId::new(1),
            WorkerCommand::RequestWork { credits: 1 },
        ),
    );
    let Some(Effect::GrantOffered { grant, .. }) = out.effects.first().cloned() else {
        panic!("no offer: {out:?}");
    };
    let out = e.apply(
        1,
        Input::worker(&w, InstanceId::new(1), WorkerCommand::AcceptGrant { grant }),
    );
    assert!(matches!(
        out.reply,
        Some(Err(Rejection::UnknownGrant { .. }))
    ));
}

#[test]
fn restore_refuses_a_snapshot_with_an_invalid_configuration() {
    let mut config = Config::default();
    config.limits.max_workers = 0;
    let snapshot = Engine::new(config).snapshot();
    match Engine::restore(&snapshot) {
        Err(RestoreError::Config(e)) => {
            assert_eq!(e.field, "limits.max_workers");
            assert_eq!(e.to_string(), "limits.max_workers must be at least 1");
        }
        other => panic!("expected a configuration refusal, got {other:?}"),
    }
    let snapshot = Engine::new(zero_grant_ttl()).snapshot();
    let e = Engine::restore(&snapshot).unwrap_err();
    assert_eq!(
        e.to_string(),
        "snapshot holds an invalid configuration: grant_ttl_ms must be at least 100 ms"
    );
}
