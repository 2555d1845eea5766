//! The checkers must catch a broken engine. With fencing switched off (a test-only
//! defect compiled in through keel-engine's `fault-injection` feature), the engine
//! accepts a zombie's completion; the swarm must find that within a bounded number of
//! seeds, and the failure report must carry what a person needs to act on it.

use keel_engine::{Engine, Faults};
use keel_sim::{run_seed, Check, SwarmOptions};

fn no_fencing(e: &mut Engine) {
    e.inject_faults(Faults {
        ignore_fencing: true,
        ..Faults::default()
    });
}

/// Seeds the swarm may need before it catches the defect.
const BOUND: u64 = 300;

#[test]
fn swarm_catches_an_engine_without_fencing() {
    let opts = SwarmOptions {
        hook: Some(no_fencing),
        shrink_budget: 0,
        repro_prefix: "cargo test -p keel-sim --test broken_engine -- seed".into(),
        ..SwarmOptions::default()
    };
    let caught = (0..BOUND)
        .map(|seed| run_seed(seed, &opts))
        .find(|r| r.failed.is_some());
    let r = caught.unwrap_or_else(|| {
        panic!("{BOUND} seeds ran against an engine without fencing and no check failed")
    });
    let check = r.failed.expect("a failed check");
    assert!(
        matches!(
            check,
            Check::StaleCompletion
                | Check::DoubleCommit
                | Check::DoubleFinish
                | Check::EngineInvariant
        ),
        "seed {} failed {check}, not a fencing check",
        r.seed
    );
    let report = r.report.unwrap_or_default();
    eprintln!("{report}");
    for needle in [
        &format!("FAIL seed={}", r.seed),
        "profile: ",
        "first violation: ",
        "events leading to it:",
        "reproduce: ",
    ] {
        assert!(
            report.contains(needle),
            "report lacks {needle:?}:\n{report}"
        );
    }
}

#[test]
fn the_first_caught_seed_shrinks_to_a_smaller_scenario_that_still_fails() {
    let opts = SwarmOptions {
        hook: Some(no_fencing),
        shrink_budget: 0,
        ..SwarmOptions::default()
    };
    let seed = (0..BOUND)
        .find(|s| run_seed(*s, &opts).failed.is_some())
        .expect("a failing seed");
    let (_, scenario) = keel_sim::scenario_for(seed);
    let run_opts = keel_sim::RunOptions {
        hook: Some(no_fencing),
        ..keel_sim::RunOptions::new(seed)
    };
    let first = keel_sim::run(&scenario, run_opts);
    let check = first.violations[0].check;
    let shrunk = keel_sim::shrink(&scenario, run_opts, check, 150).scenario;
    let size = |s: &keel_sim::Scenario| {
        s.faults.len() + s.jobs.iter().map(|j| j.tasks.len()).sum::<usize>() + s.workers.len()
    };
    assert!(
        size(&shrunk) < size(&scenario),
        "nothing was shrunk:\n{}",
        shrunk.to_toml()
    );
    // The shrunk scenario round-trips through its TOML form and still fails the same way.
    let reloaded = keel_sim::load("repro.toml", &shrunk.to_toml()).expect("the repro file loads");
    let again = keel_sim::run(&reloaded, run_opts);
    assert_eq!(again.violations.first().map(|v| v.check), Some(check));
}
