//! A new configuration applied as a logged input: it takes effect from then on, it
//! survives a snapshot and a replay, a tenant over a lowered cap keeps its running
//! tasks and gets nothing new until it is under the cap, and a configuration below a
//! floor is refused without changing anything.

use keel_engine::*;
use keel_engine_harness::*;

fn configure(h: &mut Harness, config: Config) -> Outputs {
    h.apply(Input::Configure(Box::new(config)))
}

fn capped(cap: Option<u32>) -> Config {
    let mut cfg = config();
    if let Some(cap) = cap {
        cfg.tenants.caps.insert("acme".into(), cap);
    }
    cfg
}

/// A worker of six slots running three of acme's six tasks under a cap of 3.
fn three_running() -> (Harness, Vec<Fence>) {
    let mut h = Harness::new(capped(Some(3)));
    h.register("w", 1, &[], 6).unwrap();
    let mut spec = job("acme-job", &["a", "b", "c", "d", "e", "f"]);
    spec.tenant = "acme".into();
    h.submit(spec).unwrap();
    let grants = h.request("w", 1, 6);
    assert_eq!(grants.len(), 3, "the cap of 3 holds");
    let fences = grants
        .iter()
        .map(|(g, _)| h.accept("w", 1, *g).unwrap())
        .collect();
    (h, fences)
}

#[test]
fn a_lowered_cap_lets_running_tasks_finish_and_grants_nothing_until_under_it() {
    let (mut h, fences) = three_running();
    assert!(matches!(
        accepted(&configure(&mut h, capped(Some(1)))),
        Accepted::Ok
    ));
    // Three run under a cap of 1: none is revoked, and as two of them finish nothing
    // new is offered, although the worker asks for all its free slots.
    for fence in &fences[..2] {
        let done = h.complete("w", 1, *fence);
        assert!(grants_for(&done.effects, "w").is_empty());
        assert!(h.request("w", 1, 6).is_empty());
    }
    // Under the cap at last: one more, and only one.
    let done = h.complete("w", 1, fences[2]);
    assert_eq!(grants_for(&done.effects, "w").len(), 1);
    h.check_replay();
}

#[test]
fn a_raised_cap_grants_at_once() {
    let (mut h, _) = three_running();
    h.request("w", 1, 3);
    let out = configure(&mut h, capped(None));
    let grants = grants_for(&out.effects, "w");
    assert_eq!(
        grants.len(),
        3,
        "the other three go out with the new configuration"
    );
    h.check_replay();
}

/// Takes one grant for `w` and accepts it: when its lease expires.
fn lease_expiry(h: &mut Harness) -> Time {
    let grants = h.request("w", 1, 1);
    let out = h.worker("w", 1, WorkerCommand::AcceptGrant { grant: grants[0].0 });
    match accepted(&out) {
        Accepted::LeaseStarted { expires_at, .. } => *expires_at,
        other => panic!("expected a lease, got {other:?}"),
    }
}

#[test]
fn new_timeouts_apply_to_what_comes_next_and_survive_a_snapshot() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 2).unwrap();
    h.submit(job("j", &["a", "b"])).unwrap();
    assert_eq!(lease_expiry(&mut h), config().lease_ttl_ms);
    let mut longer = config();
    longer.lease_ttl_ms = 60_000;
    configure(&mut h, longer.clone());
    assert_eq!(lease_expiry(&mut h), longer.lease_ttl_ms);
    let restored = Engine::restore(&h.engine.snapshot()).unwrap();
    assert_eq!(restored.config(), &longer);
    h.check_replay();
}

#[test]
fn a_configuration_below_a_floor_is_refused_and_changes_nothing() {
    let mut h = Harness::new(config());
    let digest = h.engine.digest();
    let mut bad = config();
    bad.lease_ttl_ms = 1;
    let out = configure(&mut h, bad);
    match rejection(&out) {
        Rejection::InvalidConfig { field, problem } => {
            assert_eq!(field, "lease_ttl_ms");
            assert!(problem.contains("at least"), "{problem}");
        }
        other => panic!("expected invalid_config, got {other:?}"),
    }
    assert_eq!(rejection(&out).code(), "invalid_config");
    assert_eq!(h.engine.digest(), digest);
    assert_eq!(h.engine.config(), &config());
}
