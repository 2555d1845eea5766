//! A budget table as people write it, in a job file (`[budgets.NAME]`) and in the
//! server's policy file (`[budgets.TENANT.NAME]`): `on_hard = "finish"|"revoke"`, in a
//! policy `reset = "1d"`, and one key per limited dimension holding
//! `{ soft = N, hard = N }`. Shared so both files read budgets the same way; the
//! engine's `BudgetSpec::check` decides what is valid.

use keel_engine::{BudgetSpec, DimensionLimit, OnHard};
use serde::de::{value::MapAccessDeserializer, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// One budget table, with the spans of its keys so refusals can point at them.
#[derive(Debug, Default)]
pub struct BudgetTable {
    /// `on_hard`, as written.
    pub on_hard: Option<Spanned<String>>,
    /// `reset`, as written (a duration); only a tenant budget may have it.
    pub reset: Option<Spanned<String>>,
    /// Every other key: a dimension and its limits, with the key's span.
    pub limits: Vec<(Spanned<String>, Spanned<DimensionLimit>)>,
}

/// A refusal and the span of the key it is about.
pub type BudgetProblem = (Range<usize>, String);

impl BudgetTable {
    /// The engine's spec of budget `name`, without a reset period (the caller reads
    /// `reset` with its own duration rules). Only `on_hard` is checked here; limits are
    /// checked by the engine.
    pub fn to_spec(&self, name: &str) -> Result<BudgetSpec, BudgetProblem> {
        let on_hard = match &self.on_hard {
            None => OnHard::Finish,
            Some(word) => match word.get_ref().as_str() {
                "finish" => OnHard::Finish,
                "revoke" => OnHard::Revoke,
                other => {
                    return Err((
                        word.span(),
                        format!(
                        "budget {name:?} on_hard must be \"finish\" or \"revoke\", not {other:?}"
                    ),
                    ))
                }
            },
        };
        let limits = self
            .limits
            .iter()
            .map(|(k, l)| (k.get_ref().clone(), *l.get_ref()))
            .collect();
        Ok(BudgetSpec {
            limits,
            on_hard,
            reset_every_ms: None,
        })
    }

    /// The span of dimension key `dimension`, if the table has it.
    pub fn dimension_span(&self, dimension: &str) -> Option<Range<usize>> {
        self.limits
            .iter()
            .find(|(k, _)| k.get_ref() == dimension)
            .map(|(k, _)| k.span())
    }
}

impl<'de> Deserialize<'de> for BudgetTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TableVisitor)
    }
}

struct TableVisitor;

impl<'de> Visitor<'de> for TableVisitor {
    type Value = BudgetTable;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a budget table: on_hard, and dimensions such as tokens = { hard = 1000 }")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BudgetTable, A::Error> {
        let mut table = BudgetTable::default();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            match key.get_ref().as_str() {
                "on_hard" => table.on_hard = Some(map.next_value()?),
                "reset" => table.reset = Some(map.next_value()?),
                _ => {
                    let limit: Spanned<Limit> = map.next_value()?;
                    let span = limit.span();
                    let limit = Spanned::new(span, limit.into_inner().0);
                    table.limits.push((key, limit));
                }
            }
        }
        Ok(table)
    }
}

/// `{ soft = N, hard = N }`, with an error that shows the expected shape.
struct Limit(DimensionLimit);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitFields {
    soft: Option<u64>,
    hard: Option<u64>,
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LimitVisitor)
    }
}

struct LimitVisitor;

impl<'de> Visitor<'de> for LimitVisitor {
    type Value = Limit;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a dimension's limits, a table such as { soft = 800, hard = 1000 }")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Limit, A::Error> {
        let f = LimitFields::deserialize(MapAccessDeserializer::new(map))?;
        Ok(Limit(DimensionLimit {
            soft: f.soft,
            hard: f.hard,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn read(text: &str) -> Result<BTreeMap<String, BudgetTable>, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_table_reads_its_policy_reset_and_limits() {
        let t = read(
            "[b]\non_hard = \"revoke\"\nreset = \"1d\"\ntokens = { soft = 8, hard = 10 }\nattempts = { hard = 2 }\n",
        )
        .unwrap();
        let b = &t["b"];
        assert_eq!(b.reset.as_ref().map(|r| r.get_ref().as_str()), Some("1d"));
        let spec = b.to_spec("b").unwrap();
        assert_eq!(spec.on_hard, OnHard::Revoke);
        assert_eq!(
            spec.limits["tokens"],
            DimensionLimit {
                soft: Some(8),
                hard: Some(10)
            }
        );
        assert_eq!(spec.limits["attempts"].hard, Some(2));
        assert!(b.dimension_span("tokens").is_some());
        assert_eq!(b.dimension_span("cents"), None);
    }

    #[test]
    fn wrong_shapes_are_refused_with_the_expected_shape() {
        let err = read("[b]\ntokens = 5\n").unwrap_err();
        assert!(err.contains("{ soft = 800, hard = 1000 }"), "{err}");
        let err = read("[b]\ntokens = { hard = 5, max = 2 }\n").unwrap_err();
        assert!(err.contains("unknown field `max`"), "{err}");
        let err = read("[b]\ntokens = { hard = -1 }\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let t = read("[b]\non_hard = \"stop\"\nx = { hard = 1 }\n").unwrap();
        let (span, msg) = t["b"].to_spec("b").unwrap_err();
        assert_eq!(
            msg,
            "budget \"b\" on_hard must be \"finish\" or \"revoke\", not \"stop\""
        );
        assert!(span.start > 0);
    }
}
