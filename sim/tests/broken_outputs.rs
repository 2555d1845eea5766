//! The output checks must catch a broken engine, not only the input check
//! (`broken_data.rs`) that sees the same defect when a leaked output goes downstream.
//! With `leak_stale_outputs` (a test-only defect compiled in through keel-engine's
//! `fault-injection` feature) the engine stores the output of a completion it refused
//! for its fence, where readers see it; within 200 seeds the swarm must flag that with
//! an output check, and the failing run must shrink to a smaller scenario that still
//! fails the same check. The defect shows only where a stale completion races a live
//! one: about one seed in sixty (seeds 170, 231 and 291 of the first 400 are caught by
//! an output check, four more by the input check first).

use keel_engine::{Engine, Faults};
use keel_sim::{run_seed, Check, SwarmOptions};

fn leak_stale_outputs(e: &mut Engine) {
    e.inject_faults(Faults {
        leak_stale_outputs: true,
        ..Faults::default()
    });
}

/// Seeds the swarm may take before it catches the defect.
const BOUND: u64 = 200;

#[test]
fn swarm_catches_an_engine_that_leaks_a_stale_output_and_shrinks_it() {
    let opts = SwarmOptions {
        hook: Some(leak_stale_outputs),
        shrink_budget: 0,
        ..SwarmOptions::default()
    };
    let caught = (0..BOUND)
        .map(|seed| run_seed(seed, &opts))
        .find(|r| matches!(r.failed, Some(Check::UncommittedOutput | Check::JobResult)))
        .unwrap_or_else(|| {
            panic!("{BOUND} seeds leaked stale outputs and no output check failed first")
        });
    let check = caught.failed.expect("a failed check");
    assert!(
        matches!(check, Check::UncommittedOutput | Check::JobResult),
        "seed {} failed {check}, not an output check:\n{}",
        caught.seed,
        caught.report.unwrap_or_default()
    );

    let (_, scenario) = keel_sim::scenario_for(caught.seed);
    let run_opts = keel_sim::RunOptions {
        hook: Some(leak_stale_outputs),
        ..keel_sim::RunOptions::new(caught.seed)
    };
    let first = keel_sim::run(&scenario, run_opts);
    assert_eq!(first.violations[0].check, check);
    let shrunk = keel_sim::shrink(&scenario, run_opts, check, 150).scenario;
    let size = |s: &keel_sim::Scenario| {
        s.faults.len() + s.jobs.iter().map(|j| j.tasks.len()).sum::<usize>() + s.workers.len()
    };
    assert!(size(&shrunk) < size(&scenario), "nothing was shrunk");
    let again = keel_sim::run(&shrunk, run_opts);
    assert_eq!(again.violations.first().map(|v| v.check), Some(check));
}

#[test]
fn the_same_seeds_pass_the_output_checks_on_a_sound_engine() {
    let opts = SwarmOptions {
        shrink_budget: 0,
        ..SwarmOptions::default()
    };
    for seed in 0..40 {
        let r = run_seed(seed, &opts);
        assert!(
            r.failed.is_none(),
            "seed {seed}: {}",
            r.report.unwrap_or_default()
        );
    }
}
