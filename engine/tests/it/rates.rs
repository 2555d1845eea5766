//! Rate limits: token buckets per tenant, lane and rate key pace grants on the engine's
//! clock, a throttled key holds back only its own tasks, status says what a task waits
//! for and until when, and buckets survive a reconfiguration, a snapshot and a replay.

use keel_engine::*;
use keel_engine_harness::*;

/// Workers stay live and grants stay offered for the whole of each test, so only the
/// buckets decide when a task is granted.
fn config() -> Config {
    let mut cfg = keel_engine_harness::config();
    cfg.liveness_timeout_ms = u64::MAX / 4;
    cfg.grant_ttl_ms = u64::MAX / 4;
    cfg
}

/// Registers `w` for every lane with ten slots and asks for all of them.
fn ready_worker(h: &mut Harness) -> usize {
    let register = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![ALL_LANES.into()],
        max_concurrency: 10,
    };
    h.worker("w", 1, register);
    h.request("w", 1, 10).len()
}

fn rate(rate: u32, per_ms: u32, burst: u32) -> Rate {
    Rate {
        rate,
        per_ms,
        burst,
    }
}

fn keyed(cfg: &mut Config, key: &str, r: Rate) {
    cfg.rates.keys.insert(key.into(), r);
}

/// A job of `n` tasks all naming `key`.
fn paced_job(name: &str, n: usize, key: Option<&str>) -> JobSpec {
    let keys: Vec<String> = (0..n).map(|i| format!("{name}-{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut spec = job(name, &refs);
    for t in &mut spec.tasks {
        t.rate_key = key.map(str::to_string);
    }
    spec
}

/// Grants `w` gets at `t` from the timers alone.
fn granted_at(h: &mut Harness, t: Time) -> usize {
    grants_for(&h.tick(t), "w").len()
}

#[test]
fn a_key_bucket_paces_grants_to_its_rate_on_the_engine_clock() {
    let mut cfg = config();
    keyed(&mut cfg, "api", rate(2, 1_000, 2));
    let mut h = Harness::new(cfg);
    let (_, first) = h.submit(paced_job("j", 6, Some("api"))).unwrap();
    // A full bucket: the burst goes out at once, and no more.
    assert_eq!(ready_worker(&mut h), 2);
    let waiting = TaskId::nth_after(first, 2);
    assert_eq!(
        h.task(waiting).status,
        TaskStatus::RateLimited {
            scope: RateScope::Key,
            name: "api".into(),
            until: 500,
        }
    );
    // One token every 500 ms, each given out by the refill timer itself.
    let held = vec![(RateScope::Key, "api".to_string(), 4)];
    assert_eq!(
        h.engine.rate_limited(),
        held,
        "the four left wait for a token"
    );
    assert_eq!(granted_at(&mut h, 499), 0);
    assert_eq!(granted_at(&mut h, 500), 1);
    assert_eq!(granted_at(&mut h, 999), 0);
    assert_eq!(granted_at(&mut h, 1_000), 1);
    // A quiet spell refills the bucket to its burst and no further.
    assert_eq!(granted_at(&mut h, 10_000), 2);
    assert_eq!(h.task(waiting).status.label(), "offered");
    assert_eq!(h.engine.rate_limited(), vec![], "nothing is left waiting");
    h.check_replay();
}

#[test]
fn a_throttled_key_holds_back_only_its_own_tasks() {
    let mut cfg = config();
    keyed(&mut cfg, "api", rate(1, 1_000, 1));
    let mut h = Harness::new(cfg);
    // Same tenant, lane and capabilities: only the rate key tells them apart, and the
    // paced tasks come first in priority order.
    let mut spec = paced_job("j", 3, Some("api"));
    spec.tasks.push(TaskSpec::new("free-1"));
    spec.tasks.push(TaskSpec::new("free-2"));
    let mut other = TaskSpec::new("db-1");
    other.rate_key = Some("db".into());
    spec.tasks.push(other);
    let (job, _) = h.submit(spec).unwrap();
    assert_eq!(
        ready_worker(&mut h),
        4,
        "one api task, two free ones and the db task"
    );
    let counts = h.engine.task_counts(job).unwrap();
    assert_eq!((counts.offered, counts.rate_limited), (4, 2));
    h.check_replay();
}

#[test]
fn tenant_and_lane_buckets_pace_all_their_tasks() {
    let mut cfg = config();
    cfg.rates.tenants.insert("acme".into(), rate(1, 1_000, 1));
    cfg.rates.lanes.insert("batch".into(), rate(1, 1_000, 2));
    let mut h = Harness::new(cfg);
    let mut acme = paced_job("acme-job", 3, None);
    acme.tenant = "acme".into();
    let mut batch = paced_job("batch-job", 3, None);
    batch.lane = "batch".into();
    h.submit(acme).unwrap();
    h.submit(batch).unwrap();
    h.submit(paced_job("free", 2, None)).unwrap();
    assert_eq!(ready_worker(&mut h), 1 + 2 + 2);
    // Both buckets hold a token again at 1 s.
    assert_eq!(granted_at(&mut h, 1_000), 2);
    h.check_replay();
}

#[test]
fn a_task_under_two_buckets_waits_for_the_emptier_one() {
    let mut cfg = config();
    cfg.rates.tenants.insert("acme".into(), rate(1, 4_000, 1));
    keyed(&mut cfg, "api", rate(1, 1_000, 1));
    let mut h = Harness::new(cfg);
    let mut spec = paced_job("j", 2, Some("api"));
    spec.tenant = "acme".into();
    let (_, first) = h.submit(spec).unwrap();
    assert_eq!(ready_worker(&mut h), 1);
    assert_eq!(
        h.task(TaskId::nth_after(first, 1)).status,
        TaskStatus::RateLimited {
            scope: RateScope::Tenant,
            name: "acme".into(),
            until: 4_000,
        }
    );
    assert_eq!(
        granted_at(&mut h, 1_000),
        0,
        "the key has a token, the tenant none"
    );
    assert_eq!(granted_at(&mut h, 4_000), 1);
}

#[test]
fn a_new_configuration_drops_or_rescales_buckets() {
    let mut cfg = config();
    keyed(&mut cfg, "api", rate(1, 1_000, 1));
    let mut h = Harness::new(cfg.clone());
    h.submit(paced_job("j", 4, Some("api"))).unwrap();
    assert_eq!(ready_worker(&mut h), 1);
    // The same bucket counted over a period ten times longer: still empty, and it
    // now refills a token in ten seconds, not one.
    let mut slower = cfg.clone();
    keyed(&mut slower, "api", rate(1, 10_000, 1));
    h.at(100);
    assert!(grants_for(&h.apply(Input::Configure(Box::new(slower))).effects, "w").is_empty());
    assert_eq!(granted_at(&mut h, 1_000), 0);
    assert_eq!(granted_at(&mut h, 10_100), 1);
    // No bucket for the key any more: the rest go out with the new configuration.
    h.at(10_200);
    let out = h.apply(Input::Configure(Box::new(config())));
    assert_eq!(grants_for(&out.effects, "w").len(), 2);
    h.check_replay();
}

#[test]
fn a_drawn_bucket_survives_a_snapshot() {
    let mut cfg = config();
    keyed(&mut cfg, "api", rate(1, 1_000, 1));
    let mut h = Harness::new(cfg);
    h.submit(paced_job("j", 3, Some("api"))).unwrap();
    assert_eq!(ready_worker(&mut h), 1);
    let mut restored = Engine::restore(&h.engine.snapshot()).expect("restores");
    assert_eq!(restored.digest(), h.engine.digest());
    // The restored engine has the same empty bucket and the same refill timer.
    let early = restored.apply(999, Input::Tick);
    assert!(grants_for(&early.effects, "w").is_empty());
    let due = restored.apply(1_000, Input::Tick);
    assert_eq!(grants_for(&due.effects, "w").len(), 1);
}

#[test]
fn a_bucket_that_could_never_grant_is_refused_naming_its_field() {
    for (field, bad) in [
        ("rate", rate(0, 1_000, 1)),
        ("per_ms", rate(1, 0, 1)),
        ("burst", rate(1, 1_000, 0)),
    ] {
        let mut cfg = config();
        keyed(&mut cfg, "api", bad);
        let want = format!("rates.keys.api.{field} must be at least 1");
        assert_eq!(
            Engine::try_new(cfg.clone()).err().unwrap().to_string(),
            want
        );
        let mut h = Harness::new(config());
        let out = h.apply(Input::Configure(Box::new(cfg)));
        assert!(
            matches!(rejection(&out), Rejection::InvalidConfig { field: f, .. } if *f == format!("rates.keys.api.{field}")),
            "{:?}",
            out.reply
        );
    }
}

#[test]
fn the_largest_numbers_neither_overflow_nor_stall() {
    let mut cfg = config();
    keyed(&mut cfg, "max", rate(u32::MAX, u32::MAX, u32::MAX));
    keyed(&mut cfg, "slow", rate(1, u32::MAX, 1));
    let mut h = Harness::new(cfg);
    h.submit(paced_job("fast", 3, Some("max"))).unwrap();
    h.submit(paced_job("slow", 2, Some("slow"))).unwrap();
    assert_eq!(ready_worker(&mut h), 3 + 1);
    // The slow key's next token is u32::MAX ms away, not at the end of time.
    assert_eq!(granted_at(&mut h, u64::from(u32::MAX) - 1), 0);
    assert_eq!(granted_at(&mut h, u64::from(u32::MAX)), 1);
}

#[test]
fn a_rate_key_is_validated_like_every_name() {
    let mut h = Harness::new(config());
    let mut spec = paced_job("j", 1, Some(""));
    let err = h.submit(spec.clone()).unwrap_err();
    assert!(err.to_string().contains("rate key"), "{err}");
    spec.tasks[0].rate_key = Some("a\nb".into());
    assert!(h.submit(spec).is_err());
}

/// The scope names operators write and read: status, gauges and the invariant checker
/// print them.
#[test]
fn rate_scopes_are_named_as_written() {
    let scopes = [RateScope::Tenant, RateScope::Lane, RateScope::Key];
    assert_eq!(scopes.map(RateScope::as_str), ["tenant", "lane", "key"]);
}

/// A policy with a bucket in any one scope is not empty.
#[test]
fn a_rate_policy_is_empty_until_a_bucket_is_configured() {
    assert!(RatePolicy::default().is_empty());
    let rate = Rate {
        rate: 1,
        per_ms: 1_000,
        burst: 1,
    };
    for scope in [RateScope::Tenant, RateScope::Lane, RateScope::Key] {
        let mut policy = RatePolicy::default();
        let buckets = match scope {
            RateScope::Tenant => &mut policy.tenants,
            RateScope::Lane => &mut policy.lanes,
            RateScope::Key => &mut policy.keys,
        };
        buckets.insert("x".into(), rate);
        assert!(!policy.is_empty(), "{}", scope.as_str());
        assert_eq!(policy.get(scope, "x"), Some(&rate));
    }
}

/// Grants `w` gets from submitting `spec`.
fn granted_on_submit(h: &mut Harness, spec: JobSpec) -> usize {
    grants_for(
        &h.apply(Input::Client(ClientCommand::SubmitJob(spec)))
            .effects,
        "w",
    )
    .len()
}

#[test]
fn a_rescaled_bucket_keeps_the_tokens_it_held() {
    let mut cfg = config();
    keyed(&mut cfg, "api", rate(1, 1_000, 4));
    let mut h = Harness::new(cfg.clone());
    ready_worker(&mut h);
    assert_eq!(
        granted_on_submit(&mut h, paced_job("one", 1, Some("api"))),
        1
    );
    // Three tokens of 1 000 units left become 30 000 units of 10 000, plus the 100
    // refilled since: three tokens now, and the fourth 9 900 ms later.
    let mut slower = cfg;
    keyed(&mut slower, "api", rate(1, 10_000, 4));
    h.at(100).apply(Input::Configure(Box::new(slower)));
    assert_eq!(
        granted_on_submit(&mut h, paced_job("more", 5, Some("api"))),
        3
    );
    assert_eq!(granted_at(&mut h, 9_999), 0);
    assert_eq!(granted_at(&mut h, 10_000), 1);
    h.check_replay();
}

/// A task held by two buckets names the one that refills last; when both refill at
/// the same moment, the wider scope (tenant, then lane, then key).
#[test]
fn a_task_held_by_two_buckets_names_the_later_then_the_wider() {
    for (tenant_ms, key_ms, scope, name) in [
        (1_000, 4_000, RateScope::Key, "api"),
        (4_000, 1_000, RateScope::Tenant, "acme"),
        (2_000, 2_000, RateScope::Tenant, "acme"),
    ] {
        let mut cfg = config();
        cfg.rates
            .tenants
            .insert("acme".into(), rate(1, tenant_ms, 1));
        keyed(&mut cfg, "api", rate(1, key_ms, 1));
        let mut h = Harness::new(cfg);
        let mut spec = paced_job("j", 2, Some("api"));
        spec.tenant = "acme".into();
        let (_, first) = h.submit(spec).unwrap();
        assert_eq!(ready_worker(&mut h), 1);
        let until = tenant_ms.max(key_ms).into();
        assert_eq!(
            h.task(TaskId::nth_after(first, 1)).status,
            TaskStatus::RateLimited {
                scope,
                name: name.into(),
                until,
            }
        );
    }
}

fn slow_and_fast() -> Config {
    let mut cfg = config();
    keyed(&mut cfg, "slow", rate(1, 4_000, 1));
    keyed(&mut cfg, "fast", rate(1, 1_000, 1));
    cfg
}

/// Two keys emptied in the same dispatch: the refill timer is the sooner one.
#[test]
fn the_sooner_of_two_refills_wakes_dispatch() {
    let mut h = Harness::new(slow_and_fast());
    h.submit(paced_job("slow", 2, Some("slow"))).unwrap();
    h.submit(paced_job("fast", 2, Some("fast"))).unwrap();
    assert_eq!(ready_worker(&mut h), 2);
    assert_eq!(h.engine.next_wakeup(), Some(1_000));
    assert_eq!(granted_at(&mut h, 1_000), 1);
    assert_eq!(granted_at(&mut h, 4_000), 1);
}

/// A refill sooner than the one already armed is armed too: a key emptied later but
/// refilling sooner is granted on time, not when the slower key refills.
#[test]
fn a_sooner_refill_is_armed_beside_a_later_one() {
    let mut h = Harness::new(slow_and_fast());
    ready_worker(&mut h);
    assert_eq!(
        granted_on_submit(&mut h, paced_job("slow", 2, Some("slow"))),
        1
    );
    h.at(10);
    assert_eq!(
        granted_on_submit(&mut h, paced_job("fast", 2, Some("fast"))),
        1
    );
    assert_eq!(granted_at(&mut h, 1_009), 0);
    assert_eq!(granted_at(&mut h, 1_010), 1);
    assert_eq!(granted_at(&mut h, 4_000), 1);
}
