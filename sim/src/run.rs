//! Running one scenario with one seed, and what the run reports.

use crate::check::CheckFailure;
use crate::expect;
pub use crate::options::RunOptions;
use crate::scenario::Scenario;
use crate::timeline::{Bar, Mark};
use crate::trace::TraceLine;
use crate::world::World;
use keel_engine::Time;
use std::collections::BTreeMap;

/// Everything a run found and, when asked, recorded.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The scenario's name.
    pub scenario: String,
    /// The seed it ran with.
    pub seed: u64,
    /// Digest of the whole released history; equal runs have equal digests.
    pub digest: u64,
    /// Events the run processed.
    pub events: u64,
    /// Simulated time when it ended.
    pub end_ms: Time,
    /// Failed checks, first one first.
    pub violations: Vec<CheckFailure>,
    /// The scenario's expectations that were not met.
    pub unmet: Vec<String>,
    /// Each job's outcome label, by job name.
    pub outcomes: BTreeMap<String, &'static str>,
    /// Jobs submitted: the scenario's, and the runs its schedules fired.
    pub jobs: usize,
    /// Why the run stopped before its end (a recovery that refused a corrupt log), if
    /// it did: the expected outcome of that fault, not a failure.
    pub stopped: Option<String>,
    /// Trace lines, when the run recorded them.
    pub lines: Vec<TraceLine>,
    /// Attempts as they ran, for the timeline.
    pub bars: Vec<Bar>,
    /// Faults as they happened, for the timeline.
    pub marks: Vec<Mark>,
    /// Worker names, the timeline's rows.
    pub workers: Vec<String>,
    /// Status reads the client's reads ran (`Scenario::reads_every_ms`).
    pub reads: u64,
}

impl RunReport {
    /// No check failed and every expectation was met.
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.unmet.is_empty()
    }

    /// The `run:` summary line.
    pub fn summary(&self) -> String {
        let stopped = match &self.stopped {
            Some(_) => " stopped=recovery_refused",
            None => "",
        };
        format!(
            "run: scenario={} seed={} events={} virtual_ms={} jobs_done={}/{} digest={:016x} violations={} unmet={}{stopped}",
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

/// Runs `scenario` with `opts.seed`. Deterministic: the same scenario and options always
/// give the same report.
pub fn run(scenario: &Scenario, opts: RunOptions) -> RunReport {
    let mut w = World::new(scenario, opts);
    w.run();
    let violations = w.checker.failures.clone();
    // Lines are recorded as outputs are released, each stamped with the time its input
    // was applied; a reply held back by a slow fsync is released after later marks.
    let mut lines = w.trace.lines.take().unwrap_or_default();
    lines.sort_by_key(|line| line.t);
    let checker = &w.checker;
    let unmet = expect::unmet(
        &scenario.expect,
        &checker.outcomes,
        &checker.stats,
        violations.len() as u64,
        w.stopped.as_deref(),
    );
    RunReport {
        scenario: scenario.name.clone(),
        seed: opts.seed,
        digest: w.trace.digest(),
        events: w.events,
        end_ms: w.now,
        violations,
        unmet,
        outcomes: checker.outcomes.all().clone(),
        jobs: scenario.jobs.len() + checker.schedules.fired_total() as usize,
        stopped: w.stopped.take(),
        lines,
        bars: std::mem::take(&mut w.checker.bars),
        marks: w
            .marks
            .iter()
            .map(|(at, who, what)| Mark {
                at: *at,
                who: who.clone(),
                what: what.clone(),
            })
            .collect(),
        workers: scenario.workers.iter().map(|w| w.name.clone()).collect(),
        reads: w.checker.reads.reads,
    }
}
