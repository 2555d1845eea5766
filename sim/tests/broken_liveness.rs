//! The check that every job ends must catch an engine that stops dispatching retried
//! tasks: with the test-only defect `starve_retries`, a queue whose head task is on a
//! second or later attempt is passed over. The engine's state stays consistent (the
//! task is ready, indexed and counted), so its invariants cannot tell; only the
//! liveness check, run after the faults heal, sees jobs that never end. The swarm must
//! find it within 300 seeds, and the failing seed must shrink to a scenario that still
//! fails the check when reloaded.

#[path = "common/broken.rs"]
mod broken;

use keel_engine::{Engine, Faults};
use keel_sim::Check;

fn starve(e: &mut Engine) {
    e.inject_faults(Faults {
        starve_retries: true,
        ..Faults::default()
    });
}

const BOUND: u64 = 300;

fn first_caught() -> keel_sim::SeedResult {
    let defect = "an engine that never dispatches a retried task";
    broken::first_caught(starve, Check::Liveness, BOUND, "broken_liveness", defect)
}

#[test]
fn swarm_catches_retried_tasks_never_dispatched() {
    let r = first_caught();
    let report = r.report.unwrap_or_default();
    eprintln!("{report}");
    assert!(
        report.contains("jobs not terminal after healing"),
        "{report}"
    );
}

#[test]
fn the_caught_seed_shrinks_and_still_fails_the_liveness_check() {
    broken::shrinks_and_still_fails(first_caught().seed, starve, Check::Liveness);
}

#[test]
fn the_same_seeds_pass_against_the_real_engine() {
    broken::passes_against_the_real_engine(first_caught().seed);
}
