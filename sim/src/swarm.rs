//! Swarm runs: one seed, one drawn profile, one generated scenario, run with every
//! check on. A failing seed is reported with its profile, the first violation and the
//! events leading to it, a command that reproduces it, and a shrunk scenario.

use crate::check::Check;
use crate::durable::EngineHook;
use crate::profile::Profile;
use crate::run::{run, RunOptions, RunReport};
use crate::scenario::Scenario;
use crate::shrink::shrink;
use crate::trace;

/// How a swarm runs its seeds.
#[derive(Clone)]
pub struct SwarmOptions {
    /// A deliberate engine fault, to test that the checks catch it.
    pub hook: Option<EngineHook>,
    /// Reruns allowed for shrinking a failure; 0 skips shrinking.
    pub shrink_budget: u32,
    /// Run every seed twice and require the same digest.
    pub check_determinism: bool,
    /// What reproduces a seed when followed by the seed number.
    pub repro_prefix: String,
    /// Keep the coordinator's log and durable state for every seed, not only those whose
    /// faults need them (to measure what durability costs).
    pub durable: bool,
}

impl Default for SwarmOptions {
    fn default() -> Self {
        SwarmOptions {
            hook: None,
            shrink_budget: 200,
            check_determinism: false,
            repro_prefix: "keel sim swarm --seeds 1 --start".into(),
            durable: false,
        }
    }
}

/// What one seed's run came to.
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// Events its run processed.
    pub events: u64,
    /// Its history digest.
    pub digest: u64,
    /// The first failed check, if any.
    pub failed: Option<Check>,
    /// The full failure report, if the seed failed.
    pub report: Option<String>,
}

/// The fault profile a seed draws and the scenario it makes.
pub fn scenario_for(seed: u64) -> (Profile, Scenario) {
    let profile = Profile::draw(seed);
    let scenario = profile.scenario();
    (profile, scenario)
}

/// Runs one seed's scenario, checking determinism and shrinking a failure as `opts`
/// ask.
pub fn run_seed(seed: u64, opts: &SwarmOptions) -> SeedResult {
    let (profile, scenario) = scenario_for(seed);
    let run_opts = RunOptions {
        hook: opts.hook,
        durable: opts.durable,
        ..RunOptions::new(seed)
    };
    let report = run(&scenario, run_opts);
    let mut result = SeedResult {
        seed,
        events: report.events,
        digest: report.digest,
        failed: report.violations.first().map(|v| v.check),
        report: None,
    };
    if opts.check_determinism && result.failed.is_none() {
        let again = run(&scenario, run_opts);
        if (again.digest, again.events) != (report.digest, report.events) {
            result.failed = Some(Check::Determinism);
            result.report = Some(format!(
                "FAIL seed={seed}\n{profile}\nfirst violation: determinism: digest {:016x} then {:016x}, events {} then {}\nreproduce: {} {seed}\n",
                report.digest, again.digest, report.events, again.events, opts.repro_prefix
            ));
        }
    }
    if result.failed.is_some() && result.report.is_none() {
        result.report = Some(failure_report(&profile, &scenario, &report, run_opts, opts));
    }
    result
}

/// The report a person needs to act on a failing seed.
pub(crate) fn failure_report(
    profile: &Profile,
    scenario: &Scenario,
    report: &RunReport,
    run_opts: RunOptions,
    opts: &SwarmOptions,
) -> String {
    let seed = report.seed;
    let Some(first) = report.violations.first() else {
        return String::new();
    };
    let mut out = format!("FAIL seed={seed}\n{profile}\nfirst violation: {first}\n");
    let traced = run(
        scenario,
        RunOptions {
            record: true,
            ..run_opts
        },
    );
    out.push_str("events leading to it:\n");
    out.push_str(&trace::compact(traced.leading_to_failure(40)));
    out.push_str(&format!("reproduce: {} {seed}\n", opts.repro_prefix));
    if opts.shrink_budget > 0 {
        let shrunk = shrink(scenario, run_opts, first.check, opts.shrink_budget);
        let small = &shrunk.scenario;
        let tasks: usize = small.jobs.iter().map(|j| j.tasks.len()).sum();
        out.push_str(&format!(
            "shrunk in {} runs to {} faults, {} jobs, {} tasks, {} workers; save as repro.toml and run: keel sim run repro.toml --seed {seed}\n",
            shrunk.runs,
            small.faults.len(),
            small.jobs.len(),
            tasks,
            small.workers.len()
        ));
        out.push_str("----- repro.toml -----\n");
        out.push_str(&small.to_toml());
        out.push_str("----------------------\n");
    }
    out
}

/// The closing `swarm:` line.
pub fn summary(seeds: u64, failures: u64, events: u64, wall_secs: f64) -> String {
    let rate = if wall_secs > 0.0 {
        events as f64 / wall_secs
    } else {
        0.0
    };
    format!("swarm: seeds={seeds} failures={failures} events={events} events_per_sec={rate:.0} wall_secs={wall_secs:.2}")
}
