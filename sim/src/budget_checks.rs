//! The budget check. It keeps its own count of every budget from the released history
//! alone: one attempt per grant offered against each budget of the job and of its
//! tenant that limits `attempts`, and each usage report's amount once, the first time a
//! report with its dedup key is accepted as new. A tenant budget that resets counts per
//! period (multiples of its `reset_every_ms` from time 0, by the engine time of the
//! event). Against that count it requires:
//! - no grant for a job once one of its own budgets, or (this period) one of its
//!   tenant's, had reached a hard limit, so attempts never pass a hard attempts limit;
//! - every report counted exactly once: a key accepted as new only once (per period),
//!   answered as a duplicate only once counted, and the engine's `used` in each reply,
//!   and in `Engine::budgets()` whenever the engine holds exactly the released inputs,
//!   equal to the count (`attempt_ms`, which the engine times itself, is not counted);
//! - each soft limit raised once (per period) and a hard limit raised once per budget,
//!   exactly when the count reaches them, naming the limit the budget declares;
//! - a task cancelled for a budget only in a job whose own budget stopped it, and such
//!   a job ending failed; a job stopped by its budget must end (reported by the
//!   liveness check).

use keel_engine::{
    Accepted, BudgetOwner, BudgetSpec, BudgetView, Effect, EndReason, Input, JobId, JobSpec,
    LimitKind, Rejection, TaskId, TaskOutcome, TenantBudgets, Time, WorkerCommand, ATTEMPT_MS,
};
use std::collections::{BTreeMap, BTreeSet};

type Key = (BudgetOwner, String);

/// A job counted against budgets: its tenant, its own budgets and how it is ending.
struct Tracked {
    tenant: String,
    own: BTreeMap<String, BudgetSpec>,
    /// A task of it was cancelled for a budget.
    budget_cancelled: bool,
    ended: bool,
}

/// One budget's count in one period (always period 0 for a budget that never resets).
#[derive(Default)]
struct Count {
    period: u64,
    used: BTreeMap<String, u64>,
    /// Dedup keys counted, with the amount each added.
    keys: BTreeMap<String, u64>,
    /// Dimensions whose soft limit the engine raised.
    warned: BTreeSet<String>,
    /// The dimension whose hard limit the engine raised, and when.
    hard: Option<(String, Time)>,
}

#[derive(Default)]
pub(crate) struct BudgetChecks {
    tenants: TenantBudgets,
    jobs: BTreeMap<JobId, Tracked>,
    tasks: BTreeMap<TaskId, JobId>,
    counts: BTreeMap<Key, Count>,
    /// Limit effects on `attempts`, raised by a grant's charge just before the grant
    /// itself: checked once that grant is counted.
    pending: Vec<Effect>,
}

impl BudgetChecks {
    pub(crate) fn new(tenants: TenantBudgets) -> BudgetChecks {
        BudgetChecks {
            tenants,
            ..BudgetChecks::default()
        }
    }

    /// Whether anything is counted: a tenant budget is configured or a job declared one.
    pub(crate) fn active(&self) -> bool {
        !self.tenants.is_empty() || !self.jobs.is_empty()
    }

    /// A job the engine admitted (submitted or fired by a schedule).
    pub(crate) fn admitted(&mut self, job: JobId, first: TaskId, spec: &JobSpec) {
        if spec.budgets.is_empty() && !self.tenants.contains_key(&spec.tenant) {
            return;
        }
        self.jobs.insert(
            job,
            Tracked {
                tenant: spec.tenant.clone(),
                own: spec.budgets.clone(),
                budget_cancelled: false,
                ended: false,
            },
        );
        for i in 0..spec.tasks.len() {
            self.tasks.insert(TaskId::nth_after(first, i as u64), job);
        }
    }

    fn spec(&self, key: &Key) -> Option<&BudgetSpec> {
        match &key.0 {
            BudgetOwner::Job(j) => self.jobs.get(j)?.own.get(&key.1),
            BudgetOwner::Tenant(t) => self.tenants.get(t)?.get(&key.1),
        }
    }

    /// The budgets a job's tasks count against: its own, then its tenant's.
    fn keys_of(&self, job: JobId) -> Vec<Key> {
        let Some(t) = self.jobs.get(&job) else {
            return Vec::new();
        };
        let own = t.own.keys().map(|n| (BudgetOwner::Job(job), n.clone()));
        let tenant = self.tenants.get(&t.tenant).into_iter().flat_map(|set| {
            set.keys()
                .map(|n| (BudgetOwner::Tenant(t.tenant.clone()), n.clone()))
        });
        own.chain(tenant).collect()
    }

    /// The period of `key` at engine time `at`.
    fn period(&self, key: &Key, at: Time) -> u64 {
        match self.spec(key).and_then(|s| s.reset_every_ms) {
            Some(every) if every > 0 => at / every,
            _ => 0,
        }
    }

    /// The count of `key` in its period at `at`; a later period starts from nothing.
    fn count_at(&mut self, key: &Key, at: Time) -> &mut Count {
        let period = self.period(key, at);
        let count = self.counts.entry(key.clone()).or_default();
        if period > count.period {
            *count = Count {
                period,
                ..Count::default()
            };
        }
        count
    }

    /// The count of `key` as of `at`, if it has one in that period.
    fn current(&self, key: &Key, at: Time) -> Option<&Count> {
        let period = self.period(key, at);
        self.counts.get(key).filter(|c| c.period == period)
    }

    /// The first dimension of `key` whose counted use reached its hard limit by `at`.
    fn exhausted(&self, key: &Key, at: Time) -> Option<(String, u64, u64)> {
        let spec = self.spec(key)?;
        let count = self.current(key, at)?;
        spec.limits.iter().find_map(|(d, l)| {
            let used = count.used.get(d).copied()?;
            let hard = l.hard.filter(|h| used >= *h)?;
            Some((d.clone(), used, hard))
        })
    }

    /// Why the job's own budgets stop it, if they do: a counted hard limit reached, or
    /// one the engine raised (on `attempt_ms`, say).
    fn stopped(&self, job: JobId) -> Option<String> {
        let own = &self.jobs.get(&job)?.own;
        own.keys().find_map(|name| {
            let key = (BudgetOwner::Job(job), name.clone());
            if let Some((d, used, hard)) = self.exhausted(&key, 0) {
                return Some(format!("budget {name} {d} {used} >= hard {hard}"));
            }
            let (d, at) = self.counts.get(&key)?.hard.clone()?;
            Some(format!("budget {name} {d} raised hard at {at} ms"))
        })
    }
}

#[path = "budget_checks_history.rs"]
mod history;

#[cfg(test)]
#[path = "budget_checks_tests.rs"]
mod tests;

/// Whether `outcome` is a cancellation for a budget.
fn budget_cancelled(outcome: &TaskOutcome) -> bool {
    matches!(
        outcome,
        TaskOutcome::Cancelled {
            reason: EndReason::BudgetExhausted
        }
    )
}

/// The dimensions the check counts itself.
fn counted(dimension: &str) -> bool {
    dimension != ATTEMPT_MS
}

/// What an accepted usage report carried, when `input` is one and it was accepted.
fn accepted_report<'a>(
    input: &'a Input,
    reply: Option<&'a Result<Accepted, Rejection>>,
) -> Option<(&'a WorkerCommand, &'a Accepted)> {
    let Input::Worker { command, .. } = input else {
        return None;
    };
    match (command, reply) {
        (WorkerCommand::ReportUsage { .. }, Some(Ok(a @ Accepted::UsageRecorded { .. }))) => {
            Some((command, a))
        }
        _ => None,
    }
}

/// The views' dimensions the check counts, for comparing with its own count.
fn compared(views: &[BudgetView]) -> impl Iterator<Item = (Key, &str, u64)> {
    views.iter().flat_map(|v| {
        v.dimensions
            .iter()
            .filter(|d| counted(&d.name))
            .map(move |d| ((v.owner.clone(), v.name.clone()), d.name.as_str(), d.used))
    })
}

/// A limit effect's fields, when `e` is one.
fn limit_of(e: &Effect) -> Option<(Key, &str, LimitKind, u64, u64)> {
    match e {
        Effect::BudgetLimitReached {
            owner,
            budget,
            dimension,
            kind,
            used,
            limit,
        } => Some((
            (owner.clone(), budget.clone()),
            dimension.as_str(),
            *kind,
            *used,
            *limit,
        )),
        _ => None,
    }
}
