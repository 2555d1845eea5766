//! Engine-wide limits: whatever tenant names clients choose, the engine holds at most
//! `max_live_jobs` jobs, `max_live_tasks` tasks, `max_tenants` tenants and
//! `max_stored_bytes` bytes of payloads and outputs. Each refusal is
//! `Rejection::LimitReached` naming the limit, changes nothing, and is retryable: room
//! comes back as jobs end and are forgotten. A restored engine keeps the same budget.

use keel_engine::*;
use keel_engine_harness::{config, limits, numbered, submit, verify, FixedTime, Harness, NOW};

fn with(f: impl FnOnce(&mut Limits)) -> Config {
    let mut c = config();
    c.retention_ms = 1_000;
    f(&mut c.limits);
    c
}

fn reached(limit: &str, value: u64) -> Rejection {
    Rejection::LimitReached {
        limit: limit.into(),
        value,
    }
}

fn job_of(name: &str, tenant: &str, n: usize, payload: &Payload) -> JobSpec {
    let mut spec = JobSpec::new(name, numbered(n));
    spec.tenant = tenant.into();
    for t in &mut spec.tasks {
        t.payload = payload.clone();
    }
    spec
}

fn bytes(n: usize) -> Payload {
    Payload::from(vec![7u8; n])
}

#[test]
fn a_limit_reached_is_typed_retryable_and_names_the_limit() {
    let r = reached("max_stored_bytes", 1 << 30);
    assert_eq!(r.code(), "limit_reached");
    assert!(r.retryable());
    assert!(!r.is_fencing());
    assert_eq!(r.to_string(), "limit max_stored_bytes (1073741824) reached");
}

/// The report: 40 jobs of 14 MiB, each under its own tenant, all admitted and held.
/// With the default budget of 512 MiB the 37th is refused, whatever its tenant.
#[test]
fn payloads_spread_over_many_tenants_stop_at_the_stored_bytes_budget() {
    let mut t = FixedTime::new(Config::default());
    // One shared MiB: the engine counts bytes by length, the test allocates them once.
    let mib = bytes(1 << 20);
    let mut admitted = 0;
    // Verified once after the loop rather than after each submit: a snapshot round
    // trip of half a GiB per input made this one test take minutes.
    for i in 0..40 {
        let spec = job_of(&format!("j{i}"), &format!("tenant{i}"), 14, &mib);
        match t.engine.apply(NOW, submit(spec)).reply {
            Some(Ok(_)) => admitted += 1,
            Some(Err(r)) => {
                assert_eq!(r, reached("max_stored_bytes", 512 << 20));
                break;
            }
            None => unreachable!("a submit has a reply"),
        }
    }
    assert_eq!(admitted, 36, "36 x 14 MiB = 504 MiB fit in 512 MiB");
    verify(&t.engine).expect("the filled engine is consistent");
    let spec = job_of("late", "tenant-late", 14, &mib);
    assert_eq!(
        t.refused(submit(spec)),
        reached("max_stored_bytes", 512 << 20)
    );
}

#[test]
fn stored_bytes_come_back_when_jobs_are_forgotten() {
    let mut h = Harness::new(with(|l| {
        l.max_payload_bytes = 500;
        l.max_stored_bytes = 1_000;
    }));
    h.register("w", 1, &[], 4).unwrap();
    let p = bytes(400);
    let (a, _) = h.submit(job_of("a", "t", 1, &p)).unwrap();
    h.submit(job_of("b", "t", 1, &p)).unwrap();
    let refused = h.submit(job_of("c", "t", 1, &p)).unwrap_err();
    assert_eq!(refused, reached("max_stored_bytes", 1_000));
    // Task "a" ends: it keeps its payload (its job's spec is read back from it) and
    // adds its output, so 200 bytes of output fit and 201 do not.
    let fence = h.take("w", 1);
    let big = WorkerCommand::Complete {
        fence,
        output: bytes(201),
    };
    let out = h.worker("w", 1, big);
    assert_eq!(out.reply, Some(Err(reached("max_stored_bytes", 1_000))));
    let fits = WorkerCommand::Complete {
        fence,
        output: bytes(200),
    };
    assert!(h.worker("w", 1, fits).reply.is_some_and(|r| r.is_ok()));
    assert_eq!(h.engine.usage().stored_bytes, 1_000);
    assert_eq!(h.engine.job_spec(a).unwrap().tasks[0].payload, p);
    // Retention forgets "a" with its payload and output; a job of 400 fits again.
    h.tick(h.now + 1_000);
    assert_eq!(h.engine.usage().stored_bytes, 400);
    h.submit(job_of("c", "t", 1, &p)).unwrap();
    assert_eq!(h.engine.usage().stored_bytes, 800);
    h.check_replay();
}

#[test]
fn a_signal_payload_that_does_not_fit_is_refused() {
    let mut t = FixedTime::new(limits(|l| {
        l.max_payload_bytes = 100;
        l.max_stored_bytes = 150;
    }));
    let mut spec = JobSpec::new("j", numbered(1));
    spec.tasks[0].payload = bytes(100);
    t.accepted(submit(spec));
    let fence = t.lease("w");
    let suspend = WorkerCommand::Suspend {
        fence,
        waitpoint: "wp".into(),
        timeout_ms: None,
        on_timeout: SuspendTimeout::Fail,
    };
    t.accepted(t.cmd("w", suspend));
    let signal = |payload| {
        Input::Client(ClientCommand::Signal {
            task: fence.task,
            waitpoint: "wp".into(),
            idempotency_key: "k".into(),
            payload,
        })
    };
    assert_eq!(
        t.refused(signal(bytes(51))),
        reached("max_stored_bytes", 150)
    );
    t.accepted(signal(bytes(50)));
}

#[test]
fn live_jobs_and_tasks_are_bounded() {
    let mut t = FixedTime::new(limits(|l| {
        l.max_live_jobs = 2;
        l.max_live_tasks = 5;
    }));
    t.accepted(submit(JobSpec::new("a", numbered(2))));
    let e = t.refused(submit(JobSpec::new("b", numbered(4))));
    assert_eq!(e, reached("max_live_tasks", 5));
    t.accepted(submit(JobSpec::new("b", numbered(3))));
    let e = t.refused(submit(JobSpec::new("c", numbered(1))));
    assert_eq!(e, reached("max_live_jobs", 2));
    // A resubmission of a held job is still answered as a duplicate.
    let (dup, _) = t.accepted(submit(JobSpec::new("a", numbered(2))));
    assert!(matches!(
        dup,
        Accepted::JobSubmitted {
            duplicate: true,
            ..
        }
    ));
}

/// A client that invents a tenant name per job: the names are forgotten with their
/// jobs, so the engine's state does not grow with the number of names ever used.
#[test]
fn tenants_are_bounded_and_forgotten_with_their_jobs() {
    let mut h = Harness::new(with(|l| l.max_tenants = 3));
    let one = |h: &mut Harness, i: u32| -> Result<(JobId, TaskId), Rejection> {
        let mut spec = JobSpec::new(format!("j{i}"), numbered(1));
        spec.tenant = format!("tenant-{i}");
        h.submit(spec)
    };
    for i in 0..3 {
        one(&mut h, i).unwrap();
    }
    assert_eq!(one(&mut h, 3).unwrap_err(), reached("max_tenants", 3));
    let mut sizes = Vec::new();
    for round in 0..40u32 {
        let (job, _) = one(&mut h, 100 + round)
            .or_else(|_| {
                // Make room: cancel the oldest job and let retention forget it.
                let oldest = h.engine.jobs()[0].id;
                h.apply(Input::Client(ClientCommand::CancelJob { job: oldest }));
                h.tick(h.now + 1_000);
                one(&mut h, 100 + round)
            })
            .expect("admitted once a tenant is forgotten");
        h.apply(Input::Client(ClientCommand::CancelJob { job }));
        h.tick(h.now + 1_000);
        sizes.push(h.engine.snapshot().len());
    }
    let usage = h.engine.usage();
    assert!(usage.jobs <= 3 && usage.tenants <= 3, "{usage:?}");
    // Each of the 34 names used since would add its bytes and a load entry.
    assert!(
        sizes[39] < sizes[5] + 64,
        "the state grows with tenant names ever used: {} then {} bytes",
        sizes[5],
        sizes[39]
    );
    h.check_replay();
}

#[test]
fn a_restored_engine_keeps_the_same_budget() {
    let mut t = FixedTime::new(limits(|l| {
        l.max_payload_bytes = 100;
        l.max_stored_bytes = 250;
        l.max_tenants = 1;
    }));
    let mut spec = JobSpec::new("a", numbered(2));
    for task in &mut spec.tasks {
        task.payload = bytes(100);
    }
    t.accepted(submit(spec));
    t.engine = Engine::restore(&t.engine.snapshot()).expect("restores");
    let mut spec = JobSpec::new("b", numbered(1));
    spec.tasks[0].payload = bytes(51);
    assert_eq!(t.refused(submit(spec)), reached("max_stored_bytes", 250));
    let mut spec = JobSpec::new("c", numbered(1));
    spec.tenant = "other".into();
    assert_eq!(t.refused(submit(spec)), reached("max_tenants", 1));
}
