//! The budget check against hand-made histories: each test breaks one rule the check
//! must catch, beside the same history kept within it, which must pass.

use super::*;
use keel_engine::{
    DimensionLimit, DimensionView, Fence, GrantId, InstanceId, JobOutcome, OnHard, Payload,
    TaskSpec, WorkerId,
};

const JOB: JobId = JobId::new(1);
const FIRST: TaskId = TaskId::new(1);

fn limit(soft: Option<u64>, hard: Option<u64>) -> DimensionLimit {
    DimensionLimit { soft, hard }
}

fn budget(dim: &str, l: DimensionLimit, reset: Option<u64>) -> BudgetSpec {
    BudgetSpec {
        limits: [(dim.to_string(), l)].into(),
        on_hard: OnHard::Finish,
        reset_every_ms: reset,
    }
}

/// Tenant "acme" with `tenant` budgets; job j1 (tasks t1..t3) of acme with `own`.
fn checks(tenant: Vec<(&str, BudgetSpec)>, own: Vec<(&str, BudgetSpec)>) -> BudgetChecks {
    let tenants: TenantBudgets = [(
        "acme".to_string(),
        tenant
            .into_iter()
            .map(|(n, b)| (n.to_string(), b))
            .collect(),
    )]
    .into();
    let mut c = BudgetChecks::new(tenants);
    let mut spec = JobSpec::new(
        "j",
        vec![TaskSpec::new("a"), TaskSpec::new("b"), TaskSpec::new("c")],
    );
    spec.tenant = "acme".into();
    spec.budgets = own.into_iter().map(|(n, b)| (n.to_string(), b)).collect();
    c.admitted(JOB, FIRST, &spec);
    c
}

fn grant(task: u64) -> Effect {
    Effect::GrantOffered {
        worker: WorkerId::new("w1"),
        grant: GrantId::new(task),
        job: JOB,
        task: TaskId::new(task),
        key: "k".into(),
        attempt: 1,
        payload: Payload::from(Vec::new()),
        inputs: vec![],
        signal: None,
        streams: vec![],
        expires_at: 0,
    }
}

fn reached(owner: BudgetOwner, budget: &str, dim: &str, kind: LimitKind, used: u64) -> Effect {
    Effect::BudgetLimitReached {
        owner,
        budget: budget.into(),
        dimension: dim.into(),
        kind,
        used,
        limit: used,
    }
}

fn fence(task: u64) -> Fence {
    Fence {
        task: TaskId::new(task),
        attempt: 1,
        epoch: 1,
    }
}

/// A usage report of `amount` tokens under `key` and the engine's answer.
fn report(
    key: &str,
    amount: u64,
    used: u64,
    duplicate: bool,
) -> (Input, Result<Accepted, Rejection>) {
    let command = WorkerCommand::ReportUsage {
        fence: fence(1),
        budget: "llm".into(),
        dimension: "tokens".into(),
        amount,
        dedup_key: key.into(),
    };
    let input = Input::worker(&WorkerId::new("w1"), InstanceId::new(1001), command);
    let reply = Ok(Accepted::UsageRecorded {
        owner: BudgetOwner::Job(JOB),
        budget: "llm".into(),
        dimension: "tokens".into(),
        used,
        duplicate,
    });
    (input, reply)
}

fn tick(c: &mut BudgetChecks, at: Time, effects: &[Effect]) -> Vec<String> {
    c.released(at, &Input::Tick, None, effects)
}

fn send(c: &mut BudgetChecks, at: Time, r: &(Input, Result<Accepted, Rejection>)) -> Vec<String> {
    c.released(at, &r.0, Some(&r.1), &[])
}

fn job_hard(n: u64) -> Effect {
    reached(
        BudgetOwner::Job(JOB),
        "tries",
        "attempts",
        LimitKind::Hard,
        n,
    )
}

#[test]
fn a_grant_past_a_jobs_hard_attempts_limit_is_caught() {
    let mut c = checks(
        vec![],
        vec![("tries", budget("attempts", limit(None, Some(2)), None))],
    );
    assert_eq!(tick(&mut c, 1, &[grant(1)]), Vec::<String>::new());
    assert_eq!(
        tick(&mut c, 2, &[job_hard(2), grant(2)]),
        Vec::<String>::new()
    );
    let broken = tick(&mut c, 3, &[grant(3)]);
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(
        broken[0].contains("t3 of j1 granted after its budget tries attempts 2 >= hard 2"),
        "{broken:?}"
    );
}

#[test]
fn a_hard_limit_reached_and_never_raised_or_raised_at_another_count_is_caught() {
    let mut c = checks(
        vec![],
        vec![("tries", budget("attempts", limit(None, Some(2)), None))],
    );
    tick(&mut c, 1, &[grant(1)]);
    let silent = tick(&mut c, 2, &[grant(2)]);
    assert!(
        silent
            .iter()
            .any(|b| b.contains("reached hard Some(2) at 2 and nothing was raised")),
        "{silent:?}"
    );
    let mut c = checks(
        vec![],
        vec![("tries", budget("attempts", limit(None, Some(2)), None))],
    );
    let early = tick(
        &mut c,
        1,
        &[
            reached(
                BudgetOwner::Job(JOB),
                "tries",
                "attempts",
                LimitKind::Hard,
                2,
            ),
            grant(1),
        ],
    );
    assert!(
        early
            .iter()
            .any(|b| b.contains("raised at 2, but counted 1")),
        "{early:?}"
    );
}

#[test]
fn a_report_counted_twice_or_a_duplicate_never_counted_is_caught() {
    let llm = budget("tokens", limit(Some(100), Some(200)), None);
    let mut c = checks(vec![], vec![("llm", llm.clone())]);
    assert!(send(&mut c, 1, &report("t1.a1.r1", 40, 40, false)).is_empty());
    assert!(send(&mut c, 2, &report("t1.a1.r1", 40, 40, true)).is_empty());
    let twice = send(&mut c, 3, &report("t1.a1.r1", 40, 80, false));
    assert!(
        twice[0].contains("counted a second time as new"),
        "{twice:?}"
    );

    let mut c = checks(vec![], vec![("llm", llm.clone())]);
    let phantom = send(&mut c, 1, &report("t1.a1.r9", 40, 0, true));
    assert!(
        phantom[0].contains("answered as a duplicate but never counted"),
        "{phantom:?}"
    );

    let mut c = checks(vec![], vec![("llm", llm)]);
    let off = send(&mut c, 1, &report("t1.a1.r1", 40, 41, false));
    assert!(
        off[0].contains("engine says 41 used, counted 40"),
        "{off:?}"
    );
}

#[test]
fn a_soft_limit_raised_twice_is_caught() {
    let mut c = checks(
        vec![],
        vec![("llm", budget("tokens", limit(Some(40), None), None))],
    );
    let soft = || reached(BudgetOwner::Job(JOB), "llm", "tokens", LimitKind::Soft, 40);
    let (input, reply) = report("t1.a1.r1", 40, 40, false);
    assert!(c.released(1, &input, Some(&reply), &[soft()]).is_empty());
    let again = tick(&mut c, 2, &[soft()]);
    assert!(again[0].contains("raised twice in one period"), "{again:?}");
}

#[test]
fn a_tenant_grant_while_exhausted_this_period_is_caught_and_allowed_after_the_reset() {
    let daily = budget("attempts", limit(None, Some(1)), Some(10_000));
    let hard = || {
        reached(
            BudgetOwner::Tenant("acme".into()),
            "daily",
            "attempts",
            LimitKind::Hard,
            1,
        )
    };
    let mut c = checks(vec![("daily", daily.clone())], vec![]);
    assert!(tick(&mut c, 5, &[hard(), grant(1)]).is_empty());
    let broken = tick(&mut c, 9_999, &[grant(2)]);
    assert!(
        broken[0].contains("while tenant acme budget daily attempts was 1 >= hard 1"),
        "{broken:?}"
    );

    let mut c = checks(vec![("daily", daily)], vec![]);
    assert!(tick(&mut c, 5, &[hard(), grant(1)]).is_empty());
    assert!(tick(&mut c, 10_000, &[hard(), grant(2)]).is_empty());
}

#[test]
fn a_budget_cancellation_without_a_stop_or_a_stopped_job_ending_otherwise_is_caught() {
    let cancel = |task| Effect::TaskFinished {
        job: JOB,
        task: TaskId::new(task),
        outcome: TaskOutcome::Cancelled {
            reason: EndReason::BudgetExhausted,
        },
    };
    let tries = budget("attempts", limit(None, Some(1)), None);
    let mut c = checks(vec![], vec![("tries", tries.clone())]);
    let unstopped = tick(&mut c, 1, &[cancel(2)]);
    assert!(
        unstopped[0].contains("cancelled for a budget none of its own reached"),
        "{unstopped:?}"
    );

    let mut c = checks(vec![], vec![("tries", tries)]);
    tick(&mut c, 1, &[job_hard(1), grant(1)]);
    assert_eq!(c.stopped_unended().len(), 1);
    let end = Effect::JobFinished {
        job: JOB,
        outcome: JobOutcome::Succeeded,
    };
    let wrong = tick(&mut c, 2, &[cancel(2), end]);
    assert!(wrong[0].contains("ended succeeded"), "{wrong:?}");
    assert!(c.stopped_unended().is_empty());
}

#[test]
fn the_engines_view_must_match_the_count_except_attempt_ms() {
    let llm = BudgetSpec {
        limits: [
            ("tokens".to_string(), limit(None, Some(100))),
            (ATTEMPT_MS.to_string(), limit(None, Some(100))),
        ]
        .into(),
        ..BudgetSpec::default()
    };
    let mut c = checks(vec![], vec![("llm", llm)]);
    send(&mut c, 1, &report("t1.a1.r1", 40, 40, false));
    let view = |tokens, ms| BudgetView {
        owner: BudgetOwner::Job(JOB),
        name: "llm".into(),
        dimensions: vec![
            DimensionView {
                name: ATTEMPT_MS.into(),
                used: ms,
                soft: None,
                hard: Some(100),
            },
            DimensionView {
                name: "tokens".into(),
                used: tokens,
                soft: None,
                hard: Some(100),
            },
        ],
        on_hard: OnHard::Finish,
        exhausted: None,
        reports: 1,
        resets_at: None,
    };
    assert_eq!(c.compare(5, &[view(40, 77)]), None);
    let off = c.compare(5, &[view(39, 0)]).expect("a mismatch");
    assert!(
        off.contains("the engine holds 39 used at 5 ms, counted 40"),
        "{off}"
    );
}

/// The budget checks run when a tenant budget is configured or a job declares one, and
/// only then.
#[test]
fn checking_is_active_with_tenant_budgets_or_a_jobs_own() {
    assert!(!BudgetChecks::default().active());
    let tenant = checks(
        vec![("daily", budget("attempts", limit(None, Some(1)), None))],
        vec![],
    );
    assert!(tenant.active());
    let mut own = BudgetChecks::default();
    let mut spec = JobSpec::new("j", vec![TaskSpec::new("a")]);
    spec.budgets = [(
        "b".to_string(),
        budget("attempts", limit(None, Some(1)), None),
    )]
    .into();
    own.admitted(JOB, FIRST, &spec);
    assert!(own.active());
    let mut plain = BudgetChecks::default();
    plain.admitted(JOB, FIRST, &JobSpec::new("p", vec![TaskSpec::new("a")]));
    assert!(
        !plain.active(),
        "a job without budgets of a tenant without any"
    );
}
