//! What a budget declares: per dimension a soft limit (a warning) and a hard limit (no
//! new grants), and what happens to running attempts when a hard limit is reached. A
//! job declares budgets in its spec; a tenant's budgets come from the configuration
//! and may reset on a period. Plain data, checked before anything is stored.

use crate::ids::JobId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The dimension the engine counts itself: grants made (an offer is an attempt's
/// start, accepted or not).
pub const ATTEMPTS: &str = "attempts";
/// The dimension the engine counts itself: milliseconds attempts held their leases,
/// added when each attempt ends.
pub const ATTEMPT_MS: &str = "attempt_ms";
/// Budgets one job may declare.
pub const MAX_BUDGETS_PER_JOB: usize = 8;
/// Dimensions one budget may limit.
pub const MAX_DIMENSIONS: usize = 16;
/// Bytes in a budget or dimension name.
pub const MAX_BUDGET_NAME_LEN: usize = 64;
/// Distinct usage reports one budget counts (per period for a tenant budget); beyond
/// it a report is refused with `limit_reached`, so dedup keys cannot grow without bound.
pub const MAX_USAGE_REPORTS: usize = 100_000;
/// The shortest and longest reset period of a tenant budget (one second, 366 days).
pub const MIN_RESET_MS: u64 = 1_000;
/// See [`MIN_RESET_MS`].
pub const MAX_RESET_MS: u64 = 366 * 86_400_000;

/// One dimension's limits; at least one is set, and a soft limit is below the hard one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DimensionLimit {
    /// Reaching it raises a warning (an effect, and a word in status) once.
    pub soft: Option<u64>,
    /// Reaching it stops new grants.
    pub hard: Option<u64>,
}

/// What a reached hard limit does to attempts already running. A hard limit on
/// [`ATTEMPTS`] always lets them finish: the attempts that reached it are the ones it
/// allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnHard {
    /// They run to their end. A job's budget then ends the job (failed,
    /// `budget_exhausted`) once none is left; a tenant's waits for its reset.
    #[default]
    Finish,
    /// They are revoked at once. A job's budget ends the job; a tenant's attempts go
    /// back to the queue (counted as a loss), each not before its revoked lease would
    /// have lapsed, and wait for the reset.
    Revoke,
}

/// A named budget.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// Limits per dimension: [`ATTEMPTS`], [`ATTEMPT_MS`], or a counter workers report
    /// (tokens, cents, ...).
    pub limits: BTreeMap<String, DimensionLimit>,
    /// What a reached hard limit does to running attempts.
    #[serde(default)]
    pub on_hard: OnHard,
    /// A tenant budget's usage starts again from zero at every multiple of this period
    /// (counted from time 0, so every coordinator agrees when). Job budgets never reset.
    #[serde(default)]
    pub reset_every_ms: Option<u64>,
}

/// Whether `name` may name a budget or a dimension: 1 to 64 bytes of ASCII letters,
/// digits, `_`, `-` and `.`.
pub fn check_budget_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_BUDGET_NAME_LEN {
        return Err(format!(
            "{what} {name:?} must be 1 to {MAX_BUDGET_NAME_LEN} bytes"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "{what} {name:?} holds {c:?}; use letters, digits, '_', '-' and '.'"
        ));
    }
    Ok(())
}

impl BudgetSpec {
    /// Checks the spec of the budget `name`; the error names the field. `tenant` says
    /// whether it is a tenant budget (only those may reset).
    pub fn check(&self, name: &str, tenant: bool) -> Result<(), String> {
        check_budget_name("budget", name)?;
        if self.limits.is_empty() {
            return Err(format!("budget {name:?} limits no dimension"));
        }
        if self.limits.len() > MAX_DIMENSIONS {
            return Err(format!(
                "budget {name:?} limits {} dimensions, at most {MAX_DIMENSIONS}",
                self.limits.len()
            ));
        }
        for (dim, limit) in &self.limits {
            check_budget_name("dimension", dim)?;
            let field = format!("budget {name:?} dimension {dim:?}");
            match (limit.soft, limit.hard) {
                (None, None) => return Err(format!("{field} sets neither soft nor hard")),
                (Some(0), _) => return Err(format!("{field}: soft must be at least 1")),
                (_, Some(0)) => return Err(format!("{field}: hard must be at least 1")),
                (Some(s), Some(h)) if s > h => {
                    return Err(format!("{field}: soft {s} is above hard {h}"))
                }
                _ => {}
            }
        }
        match self.reset_every_ms {
            Some(_) if !tenant => Err(format!(
                "budget {name:?}: only a tenant budget resets (reset_every_ms)"
            )),
            Some(ms) if !(MIN_RESET_MS..=MAX_RESET_MS).contains(&ms) => Err(format!(
                "budget {name:?}: reset_every_ms {ms} is outside {MIN_RESET_MS}..={MAX_RESET_MS}"
            )),
            _ => Ok(()),
        }
    }
}

/// Tenant budgets, by tenant name and budget name. A job's task counts against its
/// job's budgets and its tenant's.
pub type TenantBudgets = BTreeMap<String, BTreeMap<String, BudgetSpec>>;

/// Whose budget it is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BudgetOwner {
    /// Declared in the job's spec.
    Job(JobId),
    /// Configured for the tenant (`Config::budgets`).
    Tenant(String),
}

impl std::fmt::Display for BudgetOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BudgetOwner::Job(j) => write!(f, "{j}"),
            BudgetOwner::Tenant(t) => write!(f, "tenant {t}"),
        }
    }
}

/// Which of a dimension's limits was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitKind {
    /// A warning.
    Soft,
    /// Grants stop.
    Hard,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(soft: Option<u64>, hard: Option<u64>) -> BudgetSpec {
        BudgetSpec {
            limits: [("tokens".to_string(), DimensionLimit { soft, hard })].into(),
            ..BudgetSpec::default()
        }
    }

    #[test]
    fn limits_at_their_bounds_are_accepted_and_past_them_refused_by_name() {
        assert_eq!(spec(Some(1), Some(1)).check("b", false), Ok(()));
        assert_eq!(spec(None, Some(u64::MAX)).check("b", false), Ok(()));
        let refused = |s: BudgetSpec| s.check("b", false).unwrap_err();
        assert_eq!(
            refused(spec(Some(2), Some(1))),
            "budget \"b\" dimension \"tokens\": soft 2 is above hard 1"
        );
        assert!(refused(spec(None, Some(0))).contains("hard must be at least 1"));
        assert!(refused(spec(Some(0), None)).contains("soft must be at least 1"));
        assert!(refused(spec(None, None)).contains("sets neither"));
        assert!(refused(BudgetSpec::default()).contains("limits no dimension"));
    }

    #[test]
    fn only_tenant_budgets_reset_and_within_bounds() {
        let mut s = spec(None, Some(5));
        s.reset_every_ms = Some(MIN_RESET_MS);
        assert_eq!(s.check("b", true), Ok(()));
        assert!(s.check("b", false).unwrap_err().contains("only a tenant"));
        s.reset_every_ms = Some(MIN_RESET_MS - 1);
        assert!(s.check("b", true).unwrap_err().contains("outside"));
        s.reset_every_ms = Some(MAX_RESET_MS + 1);
        assert!(s.check("b", true).unwrap_err().contains("outside"));
        s.reset_every_ms = Some(MAX_RESET_MS);
        assert_eq!(s.check("b", true), Ok(()));
        s.reset_every_ms = Some(365 * 86_400_000);
        assert_eq!(s.check("b", true), Ok(()), "a yearly reset is allowed");
    }

    #[test]
    fn names_are_short_and_plain() {
        assert_eq!(check_budget_name("budget", "llm.tokens-v2_x"), Ok(()));
        assert!(check_budget_name("budget", "").is_err());
        assert!(check_budget_name("budget", &"x".repeat(65)).is_err());
        assert_eq!(check_budget_name("budget", &"x".repeat(64)), Ok(()));
        assert!(check_budget_name("dimension", "a b")
            .unwrap_err()
            .contains("' '"));
        let mut many = BudgetSpec::default();
        let one = DimensionLimit {
            soft: None,
            hard: Some(1),
        };
        for i in 0..MAX_DIMENSIONS {
            many.limits.insert(format!("d{i}"), one);
        }
        assert_eq!(many.check("b", false), Ok(()), "16 dimensions are allowed");
        many.limits.insert("one-more".into(), one);
        assert!(many.check("b", false).unwrap_err().contains("at most 16"));
    }
}
