//! The budget knobs a swarm seed turns: how many of its jobs declare a budget, and
//! whether (and how) the tenant's budget resets and revokes. Drawn from the budget
//! stream of their own, so the rest of each seed is what it was without budgets;
//! `profile_budgets` turns them into budgets.

use crate::rng::{SimRng, Stream};

/// Draws the budget knobs take, before the budgets themselves.
pub(crate) const KNOB_DRAWS: usize = 16;

/// The budget knobs one seed turned.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BudgetKnobs {
    /// Fraction of jobs that declare a budget; 0 in most seeds.
    pub job_share: f64,
    /// The reset period of the tenant's budget; 0 declares none.
    pub tenant_reset_ms: u64,
    /// The tenant's budget revokes running attempts on a hard limit.
    pub tenant_revoke: bool,
}

impl BudgetKnobs {
    pub(crate) fn draw(seed: u64) -> BudgetKnobs {
        let rng = &mut SimRng::new(seed, Stream::Budgets);
        let job_share = if rng.chance(0.35) {
            0.3 + 0.7 * rng.unit()
        } else {
            0.0
        };
        let tenant_reset_ms = if rng.chance(0.25) {
            *rng.pick(&[1_000, 3_000, 10_000])
        } else {
            0
        };
        BudgetKnobs {
            job_share,
            tenant_reset_ms,
            tenant_revoke: rng.chance(0.3),
        }
    }
}
