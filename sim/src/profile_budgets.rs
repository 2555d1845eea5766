//! The budgets a swarm profile declares: in some seeds a share of the jobs declare a
//! budget limiting attempts and tokens (random soft and hard limits, either policy on
//! reaching a hard one) and their tasks report tokens against it; in some seeds the
//! tenant every generated job belongs to has a budget that resets, and tasks of jobs
//! without one of their own report against it. Drawn from a stream of their own, so
//! the rest of each seed's workload and faults is what it was without budgets.

use crate::budget_knobs::KNOB_DRAWS;
use crate::profile::Profile;
use crate::rng::{SimRng, Stream};
use crate::scenario::JobPlan;
use crate::usage::UsagePlan;
use keel_engine::{BudgetSpec, DimensionLimit, OnHard, TenantBudgets, ATTEMPTS};

/// The budget a job declares, and the tenant's.
const JOB_BUDGET: &str = "spend";
const TENANT_BUDGET: &str = "quota";
/// The dimension tasks report.
const TOKENS: &str = "tokens";
/// A limit of at most `max`: a hard one, with a soft one below it half the time.
fn limit(rng: &mut SimRng, max: u64) -> DimensionLimit {
    let hard = rng.between(1, max.max(1));
    let soft = rng.chance(0.5).then(|| rng.between(1, hard));
    DimensionLimit {
        soft,
        hard: Some(hard),
    }
}

fn usage(rng: &mut SimRng, budget: &str) -> UsagePlan {
    UsagePlan {
        budget: budget.into(),
        dimension: TOKENS.into(),
        amount: rng.between(1, 20),
        reports: rng.between(1, 3) as u32,
        resend: rng.chance(0.5),
    }
}

impl Profile {
    /// Adds the budgets the budget knobs declare to `jobs`; returns the tenant's.
    pub(crate) fn gen_budgets(&self, jobs: &mut [JobPlan]) -> TenantBudgets {
        let rng = &mut SimRng::new(self.seed, Stream::Budgets);
        for _ in 0..KNOB_DRAWS {
            rng.next_u64(); // past the knob draws
        }
        let knobs = self.budgets;
        let mut tenants = TenantBudgets::new();
        if knobs.tenant_reset_ms > 0 {
            let spec = BudgetSpec {
                limits: [
                    (ATTEMPTS.to_string(), limit(rng, 20)),
                    (TOKENS.to_string(), limit(rng, 200)),
                ]
                .into(),
                on_hard: if knobs.tenant_revoke {
                    OnHard::Revoke
                } else {
                    OnHard::Finish
                },
                reset_every_ms: Some(knobs.tenant_reset_ms),
            };
            tenants.insert("default".into(), [(TENANT_BUDGET.to_string(), spec)].into());
        }
        for job in jobs.iter_mut() {
            let own = rng.chance(knobs.job_share);
            if own {
                let attempts = 3 * job.tasks.len() as u64;
                let spec = BudgetSpec {
                    limits: [
                        (ATTEMPTS.to_string(), limit(rng, attempts)),
                        (TOKENS.to_string(), limit(rng, 30 * job.tasks.len() as u64)),
                    ]
                    .into(),
                    on_hard: if rng.chance(0.5) {
                        OnHard::Revoke
                    } else {
                        OnHard::Finish
                    },
                    reset_every_ms: None,
                };
                job.budgets.insert(JOB_BUDGET.into(), spec);
            }
            for task in &mut job.tasks {
                task.usage = if own {
                    Some(usage(rng, JOB_BUDGET))
                } else if !tenants.is_empty() && rng.chance(0.5) {
                    Some(usage(rng, TENANT_BUDGET))
                } else {
                    None
                };
            }
        }
        tenants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn some_seeds_declare_job_budgets_some_a_resetting_tenant_budget_and_most_neither() {
        let (mut jobs, mut tenant, mut reports) = (0, 0, 0);
        for seed in 0..300 {
            let s = Profile::draw(seed).scenario();
            jobs += usize::from(s.jobs.iter().any(|j| !j.budgets.is_empty()));
            tenant += usize::from(!s.engine.budgets.is_empty());
            let usage = s
                .jobs
                .iter()
                .flat_map(|j| &j.tasks)
                .any(|t| t.usage.is_some());
            reports += usize::from(usage);
        }
        assert!(
            (60..150).contains(&jobs),
            "{jobs} of 300 seeds declare job budgets"
        );
        assert!(
            (40..120).contains(&tenant),
            "{tenant} of 300 seeds declare a tenant budget"
        );
        assert!(reports >= jobs, "{reports} seeds report usage");
    }

    #[test]
    fn scenarios_with_budgets_print_and_load_back_unchanged() {
        let with_budgets = (0..100)
            .map(|seed| Profile::draw(seed).scenario())
            .filter(|s| {
                !s.engine.budgets.is_empty() && s.jobs.iter().any(|j| !j.budgets.is_empty())
            });
        let mut seen = 0;
        for s in with_budgets.take(3) {
            let text = s.to_toml();
            let back = crate::load("repro.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, s);
            seen += 1;
        }
        assert_eq!(seen, 3);
    }
}
