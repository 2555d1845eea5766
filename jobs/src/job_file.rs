//! The job spec file as written: every field a person can set, with the source spans
//! that error reports point at. `load` turns this into the engine's `JobSpec`.

use crate::budget_file::BudgetTable;
use crate::duration::Millis;
use serde::de::{self, value::MapAccessDeserializer, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobFile {
    pub job: Spanned<JobSection>,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub task: Vec<Spanned<TaskFile>>,
    /// `[budgets.NAME]` tables, by name.
    #[serde(default)]
    pub budgets: BTreeMap<Spanned<String>, Spanned<BudgetTable>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobSection {
    pub name: Spanned<String>,
    pub tenant: Option<Spanned<String>>,
    pub lane: Option<Spanned<String>>,
    #[serde(default)]
    pub priority: i32,
    pub deadline: Option<Spanned<Millis>>,
    /// Task ids whose outputs are the job's result; left out, the sink tasks.
    pub result: Option<Spanned<Vec<Spanned<String>>>>,
}

/// Settings every task inherits unless it overrides them, and the job-wide cap.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Defaults {
    pub retry: Option<Spanned<RetryFile>>,
    pub attempt_timeout: Option<Spanned<Millis>>,
    pub estimate: Option<Millis>,
    pub max_concurrency: Option<Spanned<u32>>,
    /// The rate key of tasks that name none.
    pub rate_key: Option<String>,
}

/// A partial retry policy; unset fields fall back to the defaults, then the engine's.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetryFile {
    pub max_attempts: Option<u32>,
    pub backoff: Option<Millis>,
    pub backoff_factor: Option<u32>,
    pub backoff_max: Option<Millis>,
    pub jitter_pct: Option<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskFile {
    pub id: Spanned<String>,
    pub command: Option<Spanned<String>>,
    pub data: Option<Spanned<String>>,
    pub capabilities: Option<Spanned<Vec<Spanned<String>>>>,
    pub deps: Option<Spanned<Deps>>,
    pub on_unsatisfied: Option<OnUnsatisfied>,
    pub retry: Option<Spanned<RetryFile>>,
    pub attempt_timeout: Option<Spanned<Millis>>,
    pub delay: Option<Millis>,
    pub estimate: Option<Millis>,
    pub priority: Option<i32>,
    #[serde(default)]
    pub allow_failure: bool,
    pub rate_key: Option<String>,
    /// How the task's output stream keeps frames; left out, every frame.
    pub stream: Option<crate::stream_file::StreamFile>,
    /// The tasks whose streams this one reads while they run.
    pub stream_from: Option<Spanned<Vec<Spanned<crate::edge_file::EdgeFile>>>>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OnUnsatisfied {
    Skip,
    Cancel,
}

/// A dependency group: `["a", "b"]` (all of), `{ all_of = [..] }`, `{ any_of = [..] }`
/// or `{ quorum = k, of = [..] }`.
#[derive(Debug)]
pub(crate) struct Deps {
    pub kind: DepKind,
    pub upstream: Vec<Spanned<String>>,
}

#[derive(Debug)]
pub(crate) enum DepKind {
    AllOf,
    AnyOf,
    Quorum(Spanned<u32>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DepsTable {
    all_of: Option<Vec<Spanned<String>>>,
    any_of: Option<Vec<Spanned<String>>>,
    quorum: Option<Spanned<u32>>,
    of: Option<Vec<Spanned<String>>>,
}

impl<'de> Deserialize<'de> for Deps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DepsVisitor)
    }
}

struct DepsVisitor;

impl<'de> Visitor<'de> for DepsVisitor {
    type Value = Deps;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of task ids, or a table with all_of, any_of, or quorum and of")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Deps, A::Error> {
        let mut upstream = Vec::new();
        while let Some(id) = seq.next_element::<Spanned<String>>()? {
            upstream.push(id);
        }
        Ok(Deps {
            kind: DepKind::AllOf,
            upstream,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Deps, A::Error> {
        let t = DepsTable::deserialize(MapAccessDeserializer::new(map))?;
        let (kind, upstream) = match (t.all_of, t.any_of, t.quorum, t.of) {
            (Some(ids), None, None, None) => (DepKind::AllOf, ids),
            (None, Some(ids), None, None) => (DepKind::AnyOf, ids),
            (None, None, Some(k), Some(ids)) => (DepKind::Quorum(k), ids),
            (None, None, Some(_), None) => {
                return Err(de::Error::custom("quorum needs `of`, the list of task ids"))
            }
            (None, None, None, Some(_)) => {
                return Err(de::Error::custom(
                    "`of` needs `quorum`, how many must succeed",
                ))
            }
            _ => {
                return Err(de::Error::custom(
                    "a dependency group is exactly one of all_of, any_of, or quorum with of",
                ))
            }
        };
        Ok(Deps { kind, upstream })
    }
}
