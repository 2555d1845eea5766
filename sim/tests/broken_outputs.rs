//! The output checks must catch a broken engine. With `keep_refused_output` (a test-only
//! defect compiled in through keel-engine's `fault-injection` feature) the engine
//! stores the output of a completion it refused for its fence, where readers see it;
//! the swarm must flag that within 100 seeds, and the failing run must shrink to a
//! smaller scenario that still fails the same check.

use keel_engine::{Engine, Faults};
use keel_sim::{run_seed, Check, SwarmOptions};

fn keep_refused_output(e: &mut Engine) {
    e.inject_faults(Faults {
        keep_refused_output: true,
        ..Faults::default()
    });
}

/// Seeds the swarm may take before it catches the defect.
const BOUND: u64 = 100;

#[test]
fn swarm_catches_an_engine_that_keeps_a_refused_output_and_shrinks_it() {
    let opts = SwarmOptions {
        hook: Some(keep_refused_output),
        shrink_budget: 0,
        ..SwarmOptions::default()
    };
    let caught = (0..BOUND)
        .map(|seed| run_seed(seed, &opts))
        .find(|r| r.failed.is_some())
        .unwrap_or_else(|| panic!("{BOUND} seeds kept refused outputs and no check failed"));
    let check = caught.failed.expect("a failed check");
    assert!(
        matches!(check, Check::UncommittedOutput | Check::JobResult),
        "seed {} failed {check}, not an output check:\n{}",
        caught.seed,
        caught.report.unwrap_or_default()
    );

    let (_, scenario) = keel_sim::scenario_for(caught.seed);
    let run_opts = keel_sim::RunOptions {
        hook: Some(keep_refused_output),
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
