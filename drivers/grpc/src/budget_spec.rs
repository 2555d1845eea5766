//! Budgets on the wire: a job's budgets in `keel.v1.JobSpec`, the owner of a budget,
//! and the views `ListBudgets` answers with. What the engine cannot see (a name given
//! twice, an unknown `on_hard` value) is refused here naming the field; the engine
//! checks the limits on submission.

use crate::convert::owner_to_proto;
use crate::proto;
use crate::validate::invalid;
use keel_engine::{BudgetOwner, BudgetSpec, BudgetView, DimensionLimit, JobId, OnHard};
use std::collections::BTreeMap;
use tonic::Status;

/// A job's budgets as the wire lists them, in name order.
pub(crate) fn budgets_to_proto(budgets: &BTreeMap<String, BudgetSpec>) -> Vec<proto::Budget> {
    budgets
        .iter()
        .map(|(name, b)| proto::Budget {
            name: name.clone(),
            limits: b
                .limits
                .iter()
                .map(|(d, l)| proto::DimensionLimit {
                    dimension: d.clone(),
                    soft: l.soft,
                    hard: l.hard,
                })
                .collect(),
            on_hard: on_hard_to_proto(b.on_hard) as i32,
            reset_every_ms: b.reset_every_ms,
        })
        .collect()
}

/// The engine's budgets from the wire; a budget or dimension named twice is refused
/// rather than one of them dropped.
pub(crate) fn budgets_from_proto(
    budgets: Vec<proto::Budget>,
) -> Result<BTreeMap<String, BudgetSpec>, Status> {
    let mut out = BTreeMap::new();
    for (i, b) in budgets.into_iter().enumerate() {
        let field = |name: &str| format!("spec.budgets[{i}].{name}");
        let on_hard = match proto::OnHard::try_from(b.on_hard) {
            Ok(proto::OnHard::Unspecified | proto::OnHard::Finish) => OnHard::Finish,
            Ok(proto::OnHard::Revoke) => OnHard::Revoke,
            Err(_) => return Err(invalid(&field("on_hard"), "unknown value")),
        };
        let mut limits = BTreeMap::new();
        for (j, l) in b.limits.into_iter().enumerate() {
            let limit = DimensionLimit {
                soft: l.soft,
                hard: l.hard,
            };
            if limits.insert(l.dimension, limit).is_some() {
                let at = field(&format!("limits[{j}].dimension"));
                return Err(invalid(&at, "names a dimension listed before"));
            }
        }
        let spec = BudgetSpec {
            limits,
            on_hard,
            reset_every_ms: b.reset_every_ms,
        };
        if out.insert(b.name, spec).is_some() {
            return Err(invalid(&field("name"), "names a budget listed before"));
        }
    }
    Ok(out)
}

pub(crate) fn on_hard_to_proto(o: OnHard) -> proto::OnHard {
    match o {
        OnHard::Finish => proto::OnHard::Finish,
        OnHard::Revoke => proto::OnHard::Revoke,
    }
}

/// The word `keel budgets` and JSON documents use for an `on_hard` wire value.
pub fn on_hard_label(value: i32) -> &'static str {
    match proto::OnHard::try_from(value) {
        Ok(proto::OnHard::Revoke) => "revoke",
        _ => "finish",
    }
}

/// The engine's owner from the wire, `None` when unset.
pub fn owner_from_proto(owner: &proto::BudgetOwner) -> Option<BudgetOwner> {
    use proto::budget_owner::Owner;
    match owner.owner.as_ref()? {
        Owner::Job(j) => Some(BudgetOwner::Job(JobId::new(*j))),
        Owner::Tenant(t) => Some(BudgetOwner::Tenant(t.clone())),
    }
}

/// One budget as `ListBudgets` answers it; `job_name` is the owning job's name.
pub(crate) fn budget_view_to_proto(v: &BudgetView, job_name: String) -> proto::BudgetView {
    proto::BudgetView {
        owner: Some(owner_to_proto(&v.owner)),
        name: v.name.clone(),
        job_name,
        dimensions: v
            .dimensions
            .iter()
            .map(|d| proto::DimensionUse {
                dimension: d.name.clone(),
                used: d.used,
                soft: d.soft,
                hard: d.hard,
            })
            .collect(),
        on_hard: on_hard_to_proto(v.on_hard) as i32,
        exhausted: v.exhausted.clone(),
        reports: v.reports,
        resets_at_ms: v.resets_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BTreeMap<String, BudgetSpec> {
        let limit = |soft, hard| DimensionLimit { soft, hard };
        let llm = BudgetSpec {
            limits: [
                ("tokens".to_string(), limit(Some(8), Some(10))),
                ("attempts".to_string(), limit(None, Some(2))),
            ]
            .into(),
            on_hard: OnHard::Revoke,
            reset_every_ms: None,
        };
        let time = BudgetSpec {
            limits: [("attempt_ms".to_string(), limit(Some(5), None))].into(),
            on_hard: OnHard::Finish,
            reset_every_ms: Some(60_000),
        };
        [("llm".to_string(), llm), ("time".to_string(), time)].into()
    }

    #[test]
    fn budgets_round_trip_through_the_wire() {
        let b = sample();
        assert_eq!(budgets_from_proto(budgets_to_proto(&b)).unwrap(), b);
    }

    #[test]
    fn names_given_twice_and_unknown_policies_are_refused_naming_the_field() {
        let mut wire = budgets_to_proto(&sample());
        wire[1].name = "llm".into();
        let err = budgets_from_proto(wire).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("spec.budgets[1].name"), "{err:?}");
        let mut wire = budgets_to_proto(&sample());
        wire[0].limits[1].dimension = wire[0].limits[0].dimension.clone();
        let err = budgets_from_proto(wire).unwrap_err();
        assert!(
            err.message()
                .contains("spec.budgets[0].limits[1].dimension"),
            "{err:?}"
        );
        let mut wire = budgets_to_proto(&sample());
        wire[0].on_hard = 7;
        let err = budgets_from_proto(wire).unwrap_err();
        assert!(err.message().contains("spec.budgets[0].on_hard"), "{err:?}");
    }

    #[test]
    fn owners_round_trip_and_unset_is_none() {
        for owner in [
            BudgetOwner::Job(JobId::new(4)),
            BudgetOwner::Tenant("acme".into()),
        ] {
            assert_eq!(owner_from_proto(&owner_to_proto(&owner)), Some(owner));
        }
        assert_eq!(owner_from_proto(&proto::BudgetOwner::default()), None);
        assert_eq!(on_hard_label(proto::OnHard::Revoke as i32), "revoke");
        assert_eq!(on_hard_label(0), "finish");
    }
}
