//! Budgets as operators see them: every tenant budget configured and every budget of
//! a held job, with each dimension's use and limits.

use crate::budget_spec::BudgetOwner;
use crate::budget_spec::OnHard;
use crate::budget_use::spec_of;
use crate::ids::Time;
use crate::state::{BudgetKey, State};
use serde::{Deserialize, Serialize};

/// One budget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetView {
    /// Whose it is.
    pub owner: BudgetOwner,
    /// Its name.
    pub name: String,
    /// Its limited dimensions, by name.
    pub dimensions: Vec<DimensionView>,
    /// What a reached hard limit does to running attempts.
    pub on_hard: OnHard,
    /// The dimension whose hard limit stopped grants, if one did.
    pub exhausted: Option<String>,
    /// Usage reports counted (this period).
    pub reports: u64,
    /// When a tenant budget's current period ends, if it resets and has counted
    /// something this period.
    pub resets_at: Option<Time>,
}

/// One dimension of a budget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimensionView {
    /// `attempts`, `attempt_ms`, or a reported counter.
    pub name: String,
    /// Counted so far (this period).
    pub used: u64,
    /// The soft limit, if set.
    pub soft: Option<u64>,
    /// The hard limit, if set.
    pub hard: Option<u64>,
}

fn view(state: &State, key: &BudgetKey) -> Option<BudgetView> {
    let spec = spec_of(state, key)?;
    let u = state.budgets.get(key);
    Some(BudgetView {
        owner: key.0.clone(),
        name: key.1.clone(),
        dimensions: spec
            .limits
            .iter()
            .map(|(d, l)| DimensionView {
                name: d.clone(),
                used: u.and_then(|u| u.used.get(d).copied()).unwrap_or(0),
                soft: l.soft,
                hard: l.hard,
            })
            .collect(),
        on_hard: spec.on_hard,
        exhausted: u.and_then(|u| u.exhausted.clone()),
        reports: u.map_or(0, |u| u.reports.len() as u64),
        resets_at: u.and_then(|u| u.resets_at),
    })
}

impl crate::Engine {
    /// Tenant budgets (in tenant and name order), then the budgets of held jobs (in job
    /// order).
    pub fn budgets(&self) -> Vec<BudgetView> {
        let state = &self.state;
        let tenants = state.config.budgets.iter().flat_map(|(t, set)| {
            set.keys()
                .map(move |n| (BudgetOwner::Tenant(t.clone()), n.clone()))
        });
        let jobs = state.jobs.iter().flat_map(|(id, j)| {
            j.budgets
                .keys()
                .map(move |n| (BudgetOwner::Job(*id), n.clone()))
        });
        tenants
            .chain(jobs)
            .filter_map(|k| view(state, &k))
            .collect()
    }
}
