//! Budgets: each tenant's (`[engine.budgets.TENANT.NAME]`) and each job's
//! (`[job.budgets.NAME]`) pass the engine's own rules, and every task's usage reports
//! name a budget its job or tenant has and a dimension that budget limits.

use super::Ctx;
use crate::scenario::{Scenario, TaskPlan};
use crate::usage::MAX_REPORTS;
use crate::ScenarioError;
use keel_engine::{check_budget_name, BudgetSpec, ATTEMPTS, ATTEMPT_MS};
use std::collections::BTreeMap;

pub(super) fn check(ctx: &Ctx, s: &Scenario) -> Result<(), ScenarioError> {
    for (tenant, set) in &s.engine.budgets {
        let at = ctx.header(&format!("[engine.budgets.{tenant}"), 0);
        check_budget_name("tenant", tenant).map_err(|e| ctx.err(at.clone(), e))?;
        for (name, spec) in set {
            spec.check(name, true)
                .map_err(|e| ctx.err(at.clone(), format!("tenant {tenant:?}: {e}")))?;
        }
    }
    let none = BTreeMap::new();
    for (i, job) in s.jobs.iter().enumerate() {
        let at = ctx.header("[[job]]", i);
        for (name, spec) in &job.budgets {
            spec.check(name, false)
                .map_err(|e| ctx.err(at.clone(), format!("job {:?}: {e}", job.name)))?;
        }
        let tenant = job.tenant.as_deref().unwrap_or("default");
        let tenant_budgets = s.engine.budgets.get(tenant).unwrap_or(&none);
        for t in &job.tasks {
            usage(t, &job.budgets, tenant_budgets).map_err(|e| ctx.err(at.clone(), e))?;
        }
    }
    let tenant_budgets = s.engine.budgets.get("default").unwrap_or(&none);
    for (i, plan) in s.schedules.iter().enumerate() {
        for t in &plan.tasks {
            usage(t, &none, tenant_budgets)
                .map_err(|e| ctx.err(ctx.header("[[schedule]]", i), e))?;
        }
    }
    Ok(())
}

/// The task's usage reports name a budget of its job, else of its tenant, and a
/// dimension that budget limits which the engine does not count itself.
fn usage(
    t: &TaskPlan,
    own: &BTreeMap<String, BudgetSpec>,
    tenant: &BTreeMap<String, BudgetSpec>,
) -> Result<(), String> {
    let Some(u) = &t.usage else {
        return Ok(());
    };
    let task = &t.key;
    let Some(spec) = own.get(&u.budget).or_else(|| tenant.get(&u.budget)) else {
        let known: Vec<&str> = own
            .keys()
            .chain(tenant.keys())
            .map(String::as_str)
            .collect();
        return Err(format!(
            "task {task:?} reports usage against unknown budget {:?}; known: {}",
            u.budget,
            known.join(", ")
        ));
    };
    if u.dimension == ATTEMPTS || u.dimension == ATTEMPT_MS {
        return Err(format!(
            "task {task:?}: {} is counted by the engine, not reported",
            u.dimension
        ));
    }
    if !spec.limits.contains_key(&u.dimension) {
        let known: Vec<&str> = spec.limits.keys().map(String::as_str).collect();
        return Err(format!(
            "task {task:?} reports dimension {:?}, which budget {:?} does not limit; it limits: {}",
            u.dimension,
            u.budget,
            known.join(", ")
        ));
    }
    if !(1..=MAX_REPORTS).contains(&u.reports) {
        return Err(format!(
            "task {task:?}: usage.reports must be within 1..={MAX_REPORTS}, got {}",
            u.reports
        ));
    }
    Ok(())
}
