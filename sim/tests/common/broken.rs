//! What every broken-engine test does: run swarm seeds against an engine with one
//! deliberate defect until a seed fails the check that defect must break, then shrink
//! that seed's scenario and show the smaller file, reloaded, still fails it. Shared so
//! each test states only its defect, its check and what the report must say.

use keel_engine::Engine;
use keel_sim::{run_seed, Check, Scenario, SeedResult, SwarmOptions};

/// The first seed below `bound` whose run against the engine `hook` breaks fails
/// `check` first; panics naming `defect` when none does.
#[allow(
    dead_code,
    reason = "a test whose defect may break one of several checks uses first_failing"
)]
pub(crate) fn first_caught(
    hook: fn(&mut Engine),
    check: Check,
    bound: u64,
    test: &str,
    defect: &str,
) -> SeedResult {
    first_failing(hook, bound, test, defect, &|failed| failed == check)
}

/// The first seed below `bound` whose run against the engine `hook` breaks fails a
/// check `accept` takes; panics naming `defect` when none does.
pub(crate) fn first_failing(
    hook: fn(&mut Engine),
    bound: u64,
    test: &str,
    defect: &str,
    accept: &dyn Fn(Check) -> bool,
) -> SeedResult {
    let opts = SwarmOptions {
        hook: Some(hook),
        shrink_budget: 0,
        repro_prefix: format!("cargo test -p keel-sim --test {test} -- seed"),
        ..SwarmOptions::default()
    };
    (0..bound)
        .map(|seed| run_seed(seed, &opts))
        .find(|r| r.failed.is_some_and(accept))
        .unwrap_or_else(|| {
            panic!("{bound} seeds ran against {defect} and no expected check failed first")
        })
}

/// Workers, jobs' tasks, schedules and faults: what shrinking removes.
fn size(s: &Scenario) -> usize {
    let tasks: usize = s.jobs.iter().map(|j| j.tasks.len()).sum();
    s.faults.len() + tasks + s.workers.len() + s.schedules.len()
}

/// Shrinks `seed`'s scenario against the broken engine and checks the smaller
/// scenario, printed and loaded again, still fails `check` first.
pub(crate) fn shrinks_and_still_fails(seed: u64, hook: fn(&mut Engine), check: Check) {
    let (_, scenario) = keel_sim::scenario_for(seed);
    let run_opts = keel_sim::RunOptions {
        hook: Some(hook),
        ..keel_sim::RunOptions::new(seed)
    };
    let first = keel_sim::run(&scenario, run_opts);
    assert_eq!(first.violations[0].check, check);
    let shrunk = keel_sim::shrink(&scenario, run_opts, check, 150).scenario;
    eprintln!(
        "seed {seed}: size {} shrunk to {}",
        size(&scenario),
        size(&shrunk)
    );
    assert!(
        size(&shrunk) < size(&scenario),
        "nothing was shrunk:\n{}",
        shrunk.to_toml()
    );
    let reloaded = keel_sim::load("repro.toml", &shrunk.to_toml()).expect("the repro file loads");
    let again = keel_sim::run(&reloaded, run_opts);
    assert_eq!(again.violations.first().map(|v| v.check), Some(check));
}

/// The seed's scenario passes every check against the real engine.
pub(crate) fn passes_against_the_real_engine(seed: u64) {
    let (_, scenario) = keel_sim::scenario_for(seed);
    let report = keel_sim::run(&scenario, keel_sim::RunOptions::new(seed));
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}
