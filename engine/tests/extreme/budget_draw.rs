//! Budgets in a case: job budgets on a submission, tenant budgets on a configuration,
//! and usage reports on a recent lease. Limits come from the edges (0, 1, `u64::MAX`)
//! as often as from ordinary values, and reports name budgets and dimensions that do
//! not exist as well as ones that do.

use super::U64;
use keel_engine::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One budget: per dimension (by index) a soft and a hard limit, the hard-limit
/// policy, and a reset period.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BudgetDraw {
    pub limits: Vec<(u8, Option<U64>, Option<U64>)>,
    pub revoke: bool,
    pub reset_ms: Option<U64>,
}

/// Budget names a draw picks from (`b2` is never declared, so reports naming it are
/// refused).
const NAMES: [&str; 3] = ["b0", "b1", "b2"];
/// Dimensions: the two the engine counts, two reported ones, and one no budget limits.
const DIMENSIONS: [&str; 5] = [ATTEMPTS, ATTEMPT_MS, "tokens", "cents", "nothing"];

pub(super) fn name(i: u8) -> String {
    NAMES[i as usize % NAMES.len()].to_string()
}

pub(super) fn dimension(i: u8) -> String {
    DIMENSIONS[i as usize % DIMENSIONS.len()].to_string()
}

/// The spec a draw stands for; it may break the spec rules (a zero limit, soft above
/// hard, a reset on a job budget), which the engine must refuse by name.
pub(super) fn spec(d: &BudgetDraw) -> BudgetSpec {
    let limits: BTreeMap<String, DimensionLimit> = d
        .limits
        .iter()
        .take(4)
        .map(|(dim, soft, hard)| {
            let limit = DimensionLimit {
                soft: soft.map(U64::get),
                hard: hard.map(U64::get),
            };
            (dimension(*dim % 4), limit)
        })
        .collect();
    BudgetSpec {
        limits,
        on_hard: if d.revoke {
            OnHard::Revoke
        } else {
            OnHard::Finish
        },
        reset_every_ms: d.reset_ms.map(U64::get),
    }
}

/// Budgets by name (a later draw of a name replaces an earlier one).
pub(super) fn specs(draws: &[(u8, BudgetDraw)]) -> BTreeMap<String, BudgetSpec> {
    draws
        .iter()
        .take(3)
        .map(|(n, d)| (name(*n), spec(d)))
        .collect()
}

/// `base` with tenant budgets, by index into the tenant names.
pub(super) fn configured(
    base: &Config,
    draws: &[(u8, u8, BudgetDraw)],
    tenants: &[&str],
) -> Config {
    let mut config = base.clone();
    for (t, n, d) in draws.iter().take(4) {
        let tenant = tenants[*t as usize % tenants.len()].to_string();
        config
            .budgets
            .entry(tenant)
            .or_default()
            .insert(name(*n), spec(d));
    }
    config
}
