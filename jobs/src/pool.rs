//! The worker pool file: which kinds of workers exist, how many of each, what they can
//! run. The planner matches task capabilities against it; the simulator registers one
//! worker per count.

use crate::error::SpecError;
use crate::load::toml_error;
use keel_engine::{check_name, check_tokens, CapabilityIssue, Limits};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

/// A validated pool description.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pool {
    /// The entries in file order.
    pub entries: Vec<PoolEntry>,
}

/// `count` identical workers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolEntry {
    /// The entry's name, in plans and, numbered, as its workers' names under
    /// `keel plan --simulate`.
    pub name: String,
    /// How many such workers there are.
    pub count: u32,
    /// Tasks each worker runs at once.
    pub concurrency: u32,
    /// What each advertises.
    pub capabilities: Vec<String>,
    /// Lanes served; empty means the "default" lane, as in the engine's registration.
    pub lanes: Vec<String>,
}

impl PoolEntry {
    /// Whether these workers may run a task of `lane` that requires `capabilities`.
    pub fn serves(&self, lane: &str, capabilities: &[String]) -> bool {
        let lane_ok = if self.lanes.is_empty() {
            lane == "default"
        } else {
            self.lanes.iter().any(|l| l == lane)
        };
        lane_ok && capabilities.iter().all(|c| self.capabilities.contains(c))
    }

    /// Task slots across all workers of this entry.
    pub fn slots(&self) -> u64 {
        u64::from(self.count) * u64::from(self.concurrency)
    }
}

impl Pool {
    /// Workers across all entries.
    pub fn workers(&self) -> u64 {
        self.entries.iter().map(|e| u64::from(e.count)).sum()
    }

    /// Task slots across all workers.
    pub fn slots(&self) -> u64 {
        self.entries.iter().map(PoolEntry::slots).sum()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolFile {
    #[serde(default)]
    worker: Vec<Spanned<EntryFile>>,
}

type Located = (Range<usize>, String);
type SpannedList = Spanned<Vec<Spanned<String>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    name: Spanned<String>,
    count: Option<Spanned<u32>>,
    concurrency: Option<Spanned<u32>>,
    capabilities: Option<SpannedList>,
    lanes: Option<SpannedList>,
}

/// Parses and validates the pool file `source`, read from `file` (used in reports).
pub fn load_pool(file: &str, source: &str, limits: &Limits) -> Result<Pool, SpecError> {
    let parsed: PoolFile = toml::from_str(source).map_err(|e| toml_error(file, source, &e))?;
    if parsed.worker.is_empty() {
        let msg = "the pool has no workers; add [[worker]] tables";
        return Err(SpecError::whole_file(file, source, msg));
    }
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    let mut entries = Vec::with_capacity(parsed.worker.len());
    let mut total: u64 = 0;
    for w in parsed.worker {
        let entry = entry(w, source, limits, &mut first_line, &mut total);
        entries.push(entry.map_err(|(span, msg)| SpecError::at(file, source, span, msg))?);
    }
    Ok(Pool { entries })
}

fn entry(
    w: Spanned<EntryFile>,
    source: &str,
    limits: &Limits,
    first_line: &mut BTreeMap<String, usize>,
    total: &mut u64,
) -> Result<PoolEntry, Located> {
    let entry_span = w.span();
    let w = w.into_inner();
    let name_span = w.name.span();
    let name = w.name.into_inner();
    check_name("worker name", &name, limits.max_name_len)
        .map_err(|e| (name_span.clone(), e.to_string()))?;
    let line = source
        .get(..name_span.start)
        .map_or(0, |s| s.matches('\n').count())
        + 1;
    if let Some(first) = first_line.insert(name.clone(), line) {
        let msg = format!("worker name {name:?} is used twice (first on line {first})");
        return Err((name_span, msg));
    }
    let count = at_least_one(w.count, "count", &name)?;
    let concurrency = at_least_one(w.concurrency, "concurrency", &name)?;
    if concurrency > limits.max_concurrency_per_worker {
        let limit = limits.max_concurrency_per_worker;
        let msg = format!("worker {name:?} concurrency {concurrency} is above the limit {limit}");
        return Err((entry_span, msg));
    }
    *total += u64::from(count);
    if *total > u64::from(limits.max_workers) {
        let msg = format!("the pool has more than {} workers", limits.max_workers);
        return Err((entry_span, msg));
    }
    let capabilities = list(
        w.capabilities,
        limits.max_caps_per_worker,
        "capabilities",
        &name,
    )?;
    let values: Vec<String> = capabilities.iter().map(|(v, _)| v.clone()).collect();
    if let Err((token, why)) = check_tokens(&values, limits.max_cap_token_len) {
        let nth = usize::from(why == CapabilityIssue::Duplicate);
        let mut hits = capabilities.iter().filter(|(v, _)| *v == token);
        let span = hits.nth(nth).map_or(entry_span, |(_, s)| s.clone());
        return Err((span, format!("worker {name:?} capability {token:?}: {why}")));
    }
    let lanes = list(w.lanes, limits.max_lanes_per_worker, "lanes", &name)?;
    for (lane, span) in &lanes {
        check_name("lane", lane, limits.max_name_len)
            .map_err(|e| (span.clone(), format!("worker {name:?}: {e}")))?;
    }
    Ok(PoolEntry {
        name,
        count,
        concurrency,
        capabilities: values,
        lanes: lanes.into_iter().map(|(v, _)| v).collect(),
    })
}

fn at_least_one(value: Option<Spanned<u32>>, field: &str, name: &str) -> Result<u32, Located> {
    match value {
        None => Ok(1),
        Some(v) if *v.get_ref() == 0 => Err((
            v.span(),
            format!("worker {name:?} {field} must be at least 1"),
        )),
        Some(v) => Ok(v.into_inner()),
    }
}

/// The items of an optional list with their spans, refused when longer than `limit`.
fn list(
    list: Option<SpannedList>,
    limit: u32,
    field: &str,
    name: &str,
) -> Result<Vec<(String, Range<usize>)>, Located> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let span = list.span();
    let items = list.into_inner();
    if items.len() as u64 > u64::from(limit) {
        let msg = format!(
            "worker {name:?} lists {} {field}, limit {limit}",
            items.len()
        );
        return Err((span, msg));
    }
    Ok(items
        .into_iter()
        .map(|s| (s.span(), s.into_inner()))
        .map(|(r, v)| (v, r))
        .collect())
}
