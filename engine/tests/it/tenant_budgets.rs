//! Tenant budgets: a hard limit holds the whole tenant back until its period resets
//! (or revokes its running attempts), and a new limit or a dropped budget takes effect
//! at once.

use crate::budgets::{budget, limit, tenant_config, tenant_job, usage, TENANT_LEASE_MS};
use keel_engine::*;
use keel_engine_harness::*;

#[test]
fn a_tenant_budget_holds_the_tenant_back_until_its_period_resets() {
    let mut b = budget(&[(ATTEMPTS, limit(None, Some(1)))], OnHard::Finish);
    b.reset_every_ms = Some(10_000);
    let mut h = Harness::new(tenant_config(b));
    h.register("w", 1, &[], 4).unwrap();
    h.submit(tenant_job("j1")).unwrap();
    let (j2, t2) = h.submit(tenant_job("j2")).unwrap();
    let (other, _) = h.submit(job("other", &["x"])).unwrap();
    let out = h.worker("w", 1, WorkerCommand::RequestWork { credits: 3 });
    let granted: Vec<TaskId> = grants_for(&out.effects, "w").iter().map(|g| g.1).collect();
    assert_eq!(granted.len(), 2, "one of acme's and the other tenant's");
    assert!(!granted.contains(&t2));
    assert_eq!(
        h.task(t2).status,
        TaskStatus::BudgetStopped {
            owner: BudgetOwner::Tenant("acme".into()),
            budget: "daily".into(),
            dimension: ATTEMPTS.into(),
        }
    );
    let notes = h.engine.describe_job(j2).unwrap().status.budget_notes;
    assert_eq!(notes.len(), 1);
    assert!(notes[0].starts_with("tenant acme's budget daily: attempts 1"));
    assert!(h
        .engine
        .describe_job(other)
        .unwrap()
        .status
        .budget_notes
        .is_empty());
    assert_eq!(h.engine.budgets()[0].resets_at, Some(10_000));
    assert!(grants_for(&h.tick(9_999), "w").is_empty());
    let after = h.tick(10_000);
    assert_eq!(
        grants_for(&after, "w")
            .iter()
            .map(|g| g.1)
            .collect::<Vec<_>>(),
        vec![t2]
    );
    h.check_replay();
}

#[test]
fn a_tenant_budget_under_revoke_requeues_the_tenants_attempts() {
    let mut b = budget(&[("tokens", limit(None, Some(10)))], OnHard::Revoke);
    b.reset_every_ms = Some(60_000);
    let mut h = Harness::new(tenant_config(b));
    h.register("w", 1, &[], 4).unwrap();
    let (_, t1) = h.submit(tenant_job("j1")).unwrap();
    h.submit(tenant_job("j2")).unwrap();
    let (_, offered) = h.submit(tenant_job("j3")).unwrap();
    let f = h.take("w", 1);
    let second = h.take("w", 1);
    assert_eq!(
        h.request("w", 1, 1).len(),
        1,
        "j3's task is offered, not accepted"
    );
    usage(&mut h, f, "daily", "tokens", 10, "r");
    let effects = h.tick(h.now);
    assert!(has(&effects, |e| matches!(
        e,
        Effect::GrantWithdrawn { task, reason: EndReason::BudgetExhausted, .. } if *task == offered
    )));
    let revoked = effects
        .iter()
        .filter(|e| {
            matches!(
                e,
                Effect::LeaseRevoked {
                    reason: EndReason::BudgetExhausted,
                    ..
                }
            )
        })
        .count();
    assert_eq!(revoked, 2, "both of acme's running attempts");
    assert!(rejection(&h.complete("w", 1, second)).is_fencing());
    assert_eq!(
        h.task(t1).status,
        TaskStatus::Delayed {
            until: TENANT_LEASE_MS
        },
        "not ready before the revoked lease would have lapsed"
    );
    assert!(h.request("w", 1, 2).is_empty());
    h.tick(TENANT_LEASE_MS);
    assert_eq!(h.task(t1).status.label(), "budget_stopped");
    let after = h.tick(60_000);
    assert_eq!(
        grants_for(&after, "w").len(),
        2,
        "the reset lets both run again"
    );
    h.check_replay();
}

#[test]
fn raising_a_tenant_limit_lets_the_tenant_run_and_dropping_a_budget_forgets_its_use() {
    let b = budget(&[(ATTEMPTS, limit(None, Some(1)))], OnHard::Finish);
    let mut h = Harness::new(tenant_config(b));
    h.register("w", 1, &[], 4).unwrap();
    h.submit(tenant_job("j1")).unwrap();
    h.submit(tenant_job("j2")).unwrap();
    assert_eq!(h.request("w", 1, 2).len(), 1);
    let raised = tenant_config(budget(&[(ATTEMPTS, limit(None, Some(5)))], OnHard::Finish));
    let out = h.apply(Input::Configure(Box::new(raised)));
    assert_eq!(
        grants_for(&out.effects, "w").len(),
        1,
        "the other job now runs"
    );
    assert_eq!(h.engine.budgets()[0].dimensions[0].used, 2);
    let out = h.apply(Input::Configure(Box::new(config())));
    assert!(out.reply.as_ref().is_some_and(Result::is_ok));
    assert!(h.engine.budgets().is_empty());
    h.check_replay();
}

#[test]
fn a_period_ends_at_the_next_multiple_of_its_length_from_time_zero() {
    let mut b = budget(&[(ATTEMPTS, limit(None, Some(5)))], OnHard::Finish);
    b.reset_every_ms = Some(10_000);
    let mut h = Harness::new(tenant_config(b));
    h.register("w", 1, &[], 4).unwrap();
    h.at(25_000);
    h.submit(tenant_job("j1")).unwrap();
    assert_eq!(h.request("w", 1, 1).len(), 1);
    assert_eq!(h.engine.budgets()[0].resets_at, Some(30_000));
    h.tick(30_000);
    assert_eq!(h.engine.budgets()[0].dimensions[0].used, 0, "reset");
    assert_eq!(h.engine.budgets()[0].resets_at, None);
}
