//! Budgets: the engine counts attempts and attempt time, workers report other
//! dimensions once per dedup key, a soft limit warns once, a hard limit stops grants
//! (a job ends failed, a tenant waits for its reset), and all of it survives a
//! reconfiguration, a snapshot and a replay.

use keel_engine::*;
use keel_engine_harness::*;
use std::collections::BTreeMap;

pub(crate) fn limit(soft: Option<u64>, hard: Option<u64>) -> DimensionLimit {
    DimensionLimit { soft, hard }
}

pub(crate) fn budget(dims: &[(&str, DimensionLimit)], on_hard: OnHard) -> BudgetSpec {
    BudgetSpec {
        limits: dims.iter().map(|(d, l)| (d.to_string(), *l)).collect(),
        on_hard,
        reset_every_ms: None,
    }
}

/// The lease of tenant tests: renewed by nobody, but longer than they run until a
/// reset.
pub(crate) const TENANT_LEASE_MS: u64 = 50_000;

pub(crate) fn tenant_config(b: BudgetSpec) -> Config {
    let mut cfg = config();
    cfg.liveness_timeout_ms = u64::MAX / 4;
    cfg.lease_ttl_ms = TENANT_LEASE_MS;
    cfg.grant_ttl_ms = u64::MAX / 4;
    cfg.budgets = BTreeMap::from([(
        "acme".to_string(),
        BTreeMap::from([("daily".to_string(), b)]),
    )]);
    cfg
}

pub(crate) fn tenant_job(name: &str) -> JobSpec {
    let mut spec = job(name, &["a"]);
    spec.tenant = "acme".into();
    spec
}

/// A job of `keys` with one budget `b`, each task retried up to ten times at once.
pub(crate) fn budgeted(name: &str, keys: &[&str], b: BudgetSpec) -> JobSpec {
    let mut spec = job(name, keys);
    for t in &mut spec.tasks {
        t.retry.max_attempts = 10;
        t.retry.backoff_base_ms = 0;
        t.retry.backoff_max_ms = 0;
    }
    spec.budgets = BTreeMap::from([("b".to_string(), b)]);
    spec
}

pub(crate) fn usage(
    h: &mut Harness,
    fence: Fence,
    budget: &str,
    dim: &str,
    amount: u64,
    key: &str,
) -> Outputs {
    let cmd = WorkerCommand::ReportUsage {
        fence,
        budget: budget.into(),
        dimension: dim.into(),
        amount,
        dedup_key: key.into(),
    };
    h.worker("w", 1, cmd)
}

pub(crate) fn used(out: &Outputs) -> (u64, bool) {
    match accepted(out) {
        Accepted::UsageRecorded {
            used, duplicate, ..
        } => (*used, *duplicate),
        other => panic!("expected a usage answer, got {other:?}"),
    }
}

pub(crate) fn limits_reached(effects: &[Effect]) -> Vec<(LimitKind, String, u64, u64)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::BudgetLimitReached {
                kind,
                dimension,
                used,
                limit,
                ..
            } => Some((*kind, dimension.clone(), *used, *limit)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_attempts_limit_under_revoke_lets_the_attempts_it_allows_run() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 4).unwrap();
    let b = budget(&[(ATTEMPTS, limit(None, Some(2)))], OnHard::Revoke);
    let (job, first) = h.submit(budgeted("j", &["a", "b", "c"], b)).unwrap();
    let a = h.take("w", 1);
    let b = h.take("w", 1);
    let effects = h.tick(h.now);
    assert!(!has(&effects, |e| matches!(e, Effect::LeaseRevoked { .. })));
    assert_eq!(h.job_outcome(job), None);
    h.complete("w", 1, a);
    h.complete("w", 1, b);
    h.tick(h.now);
    assert_eq!(h.job_outcome(job), Some(JobOutcome::Failed));
    assert_eq!(
        h.task(first).status,
        TaskStatus::Done(TaskOutcome::Succeeded)
    );
    h.check_replay();
}

#[test]
fn an_attempts_limit_stops_retries_and_ends_the_job_once_its_last_attempt_ends() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 4).unwrap();
    let b = budget(&[(ATTEMPTS, limit(Some(1), Some(2)))], OnHard::Finish);
    let (job, task) = h.submit(budgeted("j", &["a"], b)).unwrap();
    let first = h.take("w", 1);
    h.fail("w", 1, first, false);
    let grants = h.request("w", 1, 1);
    assert_eq!(grants.len(), 1, "the second attempt is within the budget");
    let second = h.accept("w", 1, grants[0].0).unwrap();
    h.fail("w", 1, second, false);
    assert_eq!(h.job_outcome(job), None, "the end is due at the next input");
    let stopped = "budget b: attempts 2 reached its hard limit 2; budget-stopped, no new grants";
    let notes = h.engine.describe_job(job).unwrap().status.budget_notes;
    assert_eq!(notes, vec![stopped]);
    let ended = h
        .worker("w", 1, WorkerCommand::RequestWork { credits: 1 })
        .effects;
    assert!(grants_for(&ended, "w").is_empty(), "no third attempt");
    assert!(has(&ended, |e| matches!(
        e,
        Effect::JobFinished {
            outcome: JobOutcome::Failed,
            ..
        }
    )));
    assert_eq!(
        h.task(task).status,
        TaskStatus::Done(TaskOutcome::Cancelled {
            reason: EndReason::BudgetExhausted
        })
    );
    let notes = h.engine.describe_job(job).unwrap().status.budget_notes;
    assert_eq!(notes, vec![stopped], "the ended job still says why");
    h.check_replay();
}

#[test]
fn the_soft_and_hard_limits_are_each_raised_once_when_reached() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 4).unwrap();
    let b = budget(&[(ATTEMPTS, limit(Some(1), Some(2)))], OnHard::Finish);
    h.submit(budgeted("j", &["a", "b", "c"], b)).unwrap();
    let out = h.worker("w", 1, WorkerCommand::RequestWork { credits: 3 });
    assert_eq!(
        grants_for(&out.effects, "w").len(),
        2,
        "the hard limit is 2"
    );
    assert_eq!(
        limits_reached(&out.effects),
        vec![
            (LimitKind::Soft, ATTEMPTS.to_string(), 1, 1),
            (LimitKind::Hard, ATTEMPTS.to_string(), 2, 2),
        ]
    );
}

#[test]
fn revoke_ends_the_job_at_once_revoking_its_running_attempts() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 4).unwrap();
    let b = budget(&[("tokens", limit(None, Some(10)))], OnHard::Revoke);
    let (job, _) = h.submit(budgeted("j", &["a", "b", "c"], b)).unwrap();
    let a = h.take("w", 1);
    let grants = h.request("w", 1, 1);
    assert_eq!(grants.len(), 1);
    usage(&mut h, a, "b", "tokens", 10, "r");
    let effects = h.tick(h.now);
    assert!(has(
        &effects,
        |e| matches!(e, Effect::LeaseRevoked { fence, reason: EndReason::BudgetExhausted, .. } if *fence == a)
    ));
    assert!(has(&effects, |e| matches!(
        e,
        Effect::GrantWithdrawn {
            reason: EndReason::BudgetExhausted,
            ..
        }
    )));
    assert_eq!(h.job_outcome(job), Some(JobOutcome::Failed));
    let late = h.complete("w", 1, a);
    assert!(
        rejection(&late).is_fencing(),
        "the revoked attempt is fenced off"
    );
    h.check_replay();
}

#[test]
fn a_usage_report_is_counted_once_per_dedup_key_even_after_its_attempt_ended() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 4).unwrap();
    let b = budget(&[("tokens", limit(Some(100), Some(1_000)))], OnHard::Finish);
    let (job, _) = h.submit(budgeted("j", &["a", "b"], b)).unwrap();
    let f = h.take("w", 1);
    assert_eq!(
        used(&usage(&mut h, f, "b", "tokens", 60, "r1")),
        (60, false)
    );
    assert_eq!(used(&usage(&mut h, f, "b", "tokens", 60, "r1")), (60, true));
    let out = usage(&mut h, f, "b", "tokens", 50, "r2");
    assert_eq!(used(&out), (110, false));
    assert_eq!(
        limits_reached(&out.effects),
        vec![(LimitKind::Soft, "tokens".to_string(), 110, 100)]
    );
    h.complete("w", 1, f);
    assert_eq!(
        used(&usage(&mut h, f, "b", "tokens", 50, "r2")),
        (110, true),
        "a resend after the attempt ended is still a duplicate"
    );
    let stale = usage(&mut h, f, "b", "tokens", 5, "r3");
    assert!(
        rejection(&stale).is_fencing(),
        "a new report needs a live lease"
    );
    let view = h.engine.budgets();
    assert_eq!(view.len(), 1);
    assert_eq!(view[0].owner, BudgetOwner::Job(job));
    assert_eq!(view[0].reports, 2);
    assert_eq!(
        view[0].dimensions,
        vec![DimensionView {
            name: "tokens".into(),
            used: 110,
            soft: Some(100),
            hard: Some(1_000),
        }]
    );
    let notes = h.engine.describe_job(job).unwrap().status.budget_notes;
    assert_eq!(
        notes,
        vec!["budget b: tokens 110 reached its soft limit 100 (warning)"]
    );
    h.check_replay();
}

#[test]
fn reports_naming_what_is_not_limited_are_refused_by_name() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 4).unwrap();
    let b = budget(&[("tokens", limit(None, Some(10)))], OnHard::Finish);
    h.submit(budgeted("j", &["a"], b)).unwrap();
    let f = h.take("w", 1);
    let refused = |h: &mut Harness, budget: &str, dim: &str, key: &str| {
        let out = usage(h, f, budget, dim, 1, key);
        let r = rejection(&out).clone();
        (r.code(), r.to_string())
    };
    assert_eq!(
        refused(&mut h, "other", "tokens", "k"),
        ("unknown_budget", "unknown budget \"other\"".to_string())
    );
    assert_eq!(refused(&mut h, "b", "cents", "k").0, "invalid_usage");
    assert!(refused(&mut h, "b", "cents", "k")
        .1
        .contains("does not limit dimension \"cents\""));
    assert!(refused(&mut h, "b", ATTEMPTS, "k")
        .1
        .contains("counted by the engine"));
    assert_eq!(refused(&mut h, "b", "tokens", "").0, "invalid_name");
    assert!(refused(&mut h, "b", "cents", "k")
        .1
        .contains("budget \"b\" of j1 "));
    assert_eq!(
        refused(&mut h, "b", "tokens", &"k".repeat(300)).0,
        "invalid_name"
    );
    assert!(
        h.engine.budgets()[0].dimensions[0].used == 0,
        "nothing was counted"
    );
}

#[test]
fn a_reported_hard_limit_parks_the_rest_of_the_job_and_ends_it() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let b = budget(&[("tokens", limit(None, Some(u64::MAX)))], OnHard::Finish);
    let (job, first) = h.submit(budgeted("j", &["a", "b"], b)).unwrap();
    let f = h.take("w", 1);
    usage(&mut h, f, "b", "tokens", u64::MAX - 1, "r1");
    let out = usage(&mut h, f, "b", "tokens", u64::MAX, "r2");
    assert_eq!(used(&out), (u64::MAX, false), "use saturates");
    let second = TaskId::nth_after(first, 1);
    assert_eq!(h.task(second).status.label(), "budget_stopped");
    h.complete("w", 1, f);
    assert!(h.request("w", 1, 1).is_empty());
    h.tick(h.now);
    assert_eq!(h.job_outcome(job), Some(JobOutcome::Failed));
    assert_eq!(
        h.task(first).status,
        TaskStatus::Done(TaskOutcome::Succeeded)
    );
}

#[test]
fn bad_budgets_are_refused_naming_the_budget_and_field() {
    let mut h = Harness::new(config());
    let zero = budget(&[("tokens", limit(None, Some(0)))], OnHard::Finish);
    let err = h.submit(budgeted("j", &["a"], zero)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid job: budget \"b\" dimension \"tokens\": hard must be at least 1"
    );
    let mut resets = budget(&[("tokens", limit(None, Some(1)))], OnHard::Finish);
    resets.reset_every_ms = Some(1_000);
    let err = h.submit(budgeted("j", &["a"], resets)).unwrap_err();
    assert!(err.to_string().contains("only a tenant budget resets"));
    let mut many = job("m", &["a"]);
    for i in 0..=MAX_BUDGETS_PER_JOB {
        let b = budget(&[("tokens", limit(None, Some(1)))], OnHard::Finish);
        many.budgets.insert(format!("b{i}"), b);
    }
    assert!(h
        .submit(many.clone())
        .unwrap_err()
        .to_string()
        .contains("at most 8"));
    let inverted = tenant_config(budget(
        &[("tokens", limit(Some(5), Some(4)))],
        OnHard::Finish,
    ));
    let out = h.apply(Input::Configure(Box::new(inverted)));
    let r = rejection(&out);
    assert_eq!(r.code(), "invalid_config");
    assert!(r.to_string().contains("budgets.acme.daily"), "{r}");
    assert!(h.engine.jobs().is_empty(), "nothing was stored");
    many.budgets.remove("b0");
    assert_eq!(many.budgets.len(), MAX_BUDGETS_PER_JOB);
    assert!(h.submit(many).is_ok(), "the most budgets a job may have");
}

#[test]
fn budgets_and_their_use_survive_a_snapshot_and_are_forgotten_with_their_job() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 4).unwrap();
    let b = budget(&[("tokens", limit(Some(1), Some(100)))], OnHard::Finish);
    h.submit(budgeted("j", &["a"], b)).unwrap();
    let f = h.take("w", 1);
    usage(&mut h, f, "b", "tokens", 7, "r1");
    let restored = Engine::restore(&h.engine.snapshot()).expect("restores");
    assert_eq!(restored.digest(), h.engine.digest());
    assert_eq!(restored.budgets(), h.engine.budgets());
    h.complete("w", 1, f);
    let retention = config().retention_ms;
    h.tick(h.now + retention);
    assert!(h.engine.jobs().is_empty());
    assert!(
        h.engine.budgets().is_empty(),
        "the job's budget went with it"
    );
}

#[test]
fn a_budget_counts_at_most_its_limit_of_distinct_reports() {
    let mut cfg = config();
    cfg.lease_ttl_ms = u64::MAX / 4;
    cfg.liveness_timeout_ms = u64::MAX / 4;
    let mut engine = Engine::new(cfg);
    let w = wid("w");
    let reg = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 1,
    };
    engine.apply(0, Input::worker(&w, inst(1), reg));
    let b = budget(&[("tokens", limit(None, Some(u64::MAX)))], OnHard::Finish);
    engine.apply(
        0,
        Input::Client(ClientCommand::SubmitJob(budgeted("j", &["a"], b))),
    );
    let out = engine.apply(
        0,
        Input::worker(&w, inst(1), WorkerCommand::RequestWork { credits: 1 }),
    );
    let grant = grants_for(&out.effects, "w")[0].0;
    let out = engine.apply(
        0,
        Input::worker(&w, inst(1), WorkerCommand::AcceptGrant { grant }),
    );
    let Some(Ok(Accepted::LeaseStarted { fence, .. })) = out.reply else {
        panic!("accepted");
    };
    let report = |key: String| WorkerCommand::ReportUsage {
        fence,
        budget: "b".into(),
        dimension: "tokens".into(),
        amount: 1,
        dedup_key: key,
    };
    for i in 0..MAX_USAGE_REPORTS {
        let out = engine.apply(0, Input::worker(&w, inst(1), report(format!("k{i}"))));
        assert!(matches!(out.reply, Some(Ok(_))), "report {i}");
    }
    let out = engine.apply(0, Input::worker(&w, inst(1), report("one-more".into())));
    assert_eq!(out.reply.unwrap().unwrap_err().code(), "limit_reached");
    let again = engine.apply(0, Input::worker(&w, inst(1), report("k0".into())));
    assert!(matches!(
        again.reply,
        Some(Ok(Accepted::UsageRecorded {
            duplicate: true,
            ..
        }))
    ));
    assert_eq!(
        engine.budgets()[0].dimensions[0].used,
        MAX_USAGE_REPORTS as u64
    );
    assert!(engine.check_invariants().is_ok());
}

#[test]
fn attempt_time_is_counted_when_each_attempt_ends_and_its_hard_limit_ends_the_job() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 4).unwrap();
    let b = budget(&[(ATTEMPT_MS, limit(Some(100), Some(500)))], OnHard::Finish);
    let (job, _) = h.submit(budgeted("j", &["a", "b"], b)).unwrap();
    let first = h.take("w", 1);
    h.at(300);
    let out = h.complete("w", 1, first);
    assert_eq!(
        limits_reached(&out.effects),
        vec![(LimitKind::Soft, ATTEMPT_MS.to_string(), 300, 100)]
    );
    let second = h.take("w", 1);
    h.at(600);
    let out = h.fail("w", 1, second, false);
    assert_eq!(
        limits_reached(&out.effects),
        vec![(LimitKind::Hard, ATTEMPT_MS.to_string(), 600, 500)]
    );
    assert_eq!(h.engine.budgets()[0].dimensions[0].used, 600);
    h.tick(600);
    assert_eq!(h.job_outcome(job), Some(JobOutcome::Failed));
    h.check_replay();
}

#[test]
fn the_first_budget_to_stop_a_job_is_the_one_it_names() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 4).unwrap();
    let mut spec = budgeted(
        "j",
        &["a", "b"],
        budget(&[(ATTEMPTS, limit(None, Some(1)))], OnHard::Finish),
    );
    spec.budgets.insert(
        "c".into(),
        budget(&[(ATTEMPTS, limit(None, Some(1)))], OnHard::Finish),
    );
    let (job, first) = h.submit(spec).unwrap();
    h.take("w", 1);
    let held = TaskId::nth_after(first, 1);
    assert_eq!(
        h.task(held).status,
        TaskStatus::BudgetStopped {
            owner: BudgetOwner::Job(job),
            budget: "b".into(),
            dimension: ATTEMPTS.into(),
        }
    );
    assert_eq!(
        h.engine
            .describe_job(job)
            .unwrap()
            .status
            .budget_notes
            .len(),
        2
    );
}
