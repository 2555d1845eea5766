//! The data check must catch an engine that hands on data it should not: with the
//! test-only defect `leak_stale_outputs`, a zombie's (or a losing attempt's) refused
//! completion still overwrites the task's committed output, so a downstream grant
//! carries it. Control flow is untouched; only the data check can see it. The swarm
//! must find it within 300 seeds, and the failing seed must shrink.

#[path = "common/broken.rs"]
mod broken;

use keel_engine::{Engine, Faults};
use keel_sim::Check;

fn leaky(e: &mut Engine) {
    e.inject_faults(Faults {
        leak_stale_outputs: true,
        ..Faults::default()
    });
}

const BOUND: u64 = 300;

/// The output checks may see a leaked output first, where it is read back; the seed
/// wanted is one where the grant downstream gives it away.
fn first_caught() -> keel_sim::SeedResult {
    let defect = "an engine leaking stale outputs";
    broken::first_caught(leaky, Check::InputMismatch, BOUND, "broken_data", defect)
}

#[test]
fn swarm_catches_an_engine_handing_a_zombie_output_downstream() {
    let r = first_caught();
    let report = r.report.unwrap_or_default();
    eprintln!("{report}");
    assert!(report.contains("input_mismatch"), "{report}");
    assert!(report.contains("is the committed attempt"), "{report}");
}

#[test]
fn the_caught_seed_shrinks_to_a_smaller_scenario_that_still_fails_the_data_check() {
    broken::shrinks_and_still_fails(first_caught().seed, leaky, Check::InputMismatch);
}

#[test]
fn the_same_seeds_pass_against_the_real_engine() {
    broken::passes_against_the_real_engine(first_caught().seed);
}
