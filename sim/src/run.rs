//! Running one scenario with one seed, and what the run reports.

use crate::checks::Violation;
use crate::expect;
use crate::ledger::Bar;
use crate::scenario::Scenario;
use crate::trace::TraceLine;
pub use crate::world::RunOptions;
use crate::world::World;
use keel_engine::Time;
use std::collections::BTreeMap;

/// A fault as it happened, for the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub at: Time,
    /// A worker name, or `coordinator`, `network`, `client`, `all`.
    pub who: String,
    pub what: String,
}

#[derive(Clone, Debug)]
pub struct RunReport {
    pub scenario: String,
    pub seed: u64,
    /// Digest of the whole released history; equal runs have equal digests.
    pub digest: u64,
    pub events: u64,
    pub end_ms: Time,
    /// Safety and liveness violations, first one first.
    pub violations: Vec<Violation>,
    /// The scenario's expectations that were not met.
    pub unmet: Vec<String>,
    pub outcomes: BTreeMap<String, &'static str>,
    pub jobs: usize,
    /// Trace lines, when the run recorded them.
    pub lines: Vec<TraceLine>,
    pub bars: Vec<Bar>,
    pub marks: Vec<Mark>,
    pub workers: Vec<String>,
}

impl RunReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.unmet.is_empty()
    }

    /// The `run:` summary line.
    pub fn summary(&self) -> String {
        format!(
            "run: scenario={} seed={} events={} virtual_ms={} jobs_done={}/{} digest={:016x} violations={} unmet={}",
            self.scenario,
            self.seed,
            self.events,
            self.end_ms,
            self.outcomes.len(),
            self.jobs,
            self.digest,
            self.violations.len(),
            self.unmet.len()
        )
    }

    /// Trace lines at or before the first violation, the last `n` of them.
    pub fn leading_to_failure(&self, n: usize) -> &[TraceLine] {
        let until = self.violations.first().map(|v| v.at).unwrap_or(Time::MAX);
        let end = self.lines.partition_point(|l| l.t <= until);
        &self.lines[end.saturating_sub(n)..end]
    }
}

/// Runs `s` with `opts.seed`. Deterministic: the same scenario and options always give
/// the same report.
pub fn run(s: &Scenario, opts: RunOptions) -> RunReport {
    let mut w = World::new(s, opts);
    w.run();
    let violations = w.checker.violations.clone();
    let unmet = expect::unmet(&s.expect, &w.checker.ledger, violations.len() as u64);
    RunReport {
        scenario: s.name.clone(),
        seed: opts.seed,
        digest: w.trace.digest(),
        events: w.events,
        end_ms: w.now,
        violations,
        unmet,
        outcomes: w.checker.ledger.outcomes().clone(),
        jobs: s.jobs.len(),
        lines: w.trace.lines.take().unwrap_or_default(),
        bars: std::mem::take(&mut w.checker.ledger.bars),
        marks: w
            .marks
            .iter()
            .map(|(at, who, what)| Mark {
                at: *at,
                who: who.clone(),
                what: what.clone(),
            })
            .collect(),
        workers: s.workers.iter().map(|w| w.name.clone()).collect(),
    }
}
