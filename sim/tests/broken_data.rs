//! The data check must catch an engine that hands on data it should not: with the
//! test-only defect `leak_stale_outputs`, a zombie's (or a losing attempt's) refused
//! completion still overwrites the task's committed output, so a downstream grant
//! carries it. Control flow is untouched; only the data check can see it. The swarm
//! must find it within 300 seeds, and the failing seed must shrink.

use keel_engine::{Engine, Faults};
use keel_sim::{run_seed, Check, SwarmOptions};

fn leaky(e: &mut Engine) {
    e.inject_faults(Faults {
        leak_stale_outputs: true,
        ..Faults::default()
    });
}

const BOUND: u64 = 300;

fn first_caught() -> keel_sim::SeedResult {
    let opts = SwarmOptions {
        hook: Some(leaky),
        shrink_budget: 0,
        repro_prefix: "cargo test -p keel-sim --test broken_data -- seed".into(),
        ..SwarmOptions::default()
    };
    (0..BOUND)
        .map(|seed| run_seed(seed, &opts))
        // The output checks may see a leaked output first, where it is read back; the
        // seed wanted is one where the grant downstream gives it away.
        .find(|r| r.failed == Some(Check::InputMismatch))
        .unwrap_or_else(|| {
            panic!("{BOUND} seeds ran against an engine leaking stale outputs and the data check never failed first")
        })
}

#[test]
fn swarm_catches_an_engine_handing_a_zombie_output_downstream() {
    let r = first_caught();
    assert_eq!(r.failed, Some(Check::InputMismatch), "seed {}", r.seed);
    let report = r.report.unwrap_or_default();
    eprintln!("{report}");
    assert!(report.contains("input_mismatch"), "{report}");
    assert!(report.contains("is the committed attempt"), "{report}");
}

#[test]
fn the_caught_seed_shrinks_to_a_smaller_scenario_that_still_fails_the_data_check() {
    let seed = first_caught().seed;
    let (_, scenario) = keel_sim::scenario_for(seed);
    let run_opts = keel_sim::RunOptions {
        hook: Some(leaky),
        ..keel_sim::RunOptions::new(seed)
    };
    let first = keel_sim::run(&scenario, run_opts);
    assert_eq!(first.violations[0].check, Check::InputMismatch);
    let shrunk = keel_sim::shrink(&scenario, run_opts, Check::InputMismatch, 150).scenario;
    let size = |s: &keel_sim::Scenario| {
        s.faults.len() + s.jobs.iter().map(|j| j.tasks.len()).sum::<usize>() + s.workers.len()
    };
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
    assert_eq!(
        again.violations.first().map(|v| v.check),
        Some(Check::InputMismatch)
    );
}
