//! The input check must catch an engine that forgets a signal: with the test-only
//! defect `signal_first_attempt_only`, the attempt a signal resumed carries it, but a
//! retry after it runs without it. Only swarm seeds where a resumed task fails and is
//! retried show it (a third of the seeds have waiting tasks); the swarm must find it
//! within 300 seeds, and the failing seed must shrink to a scenario that still fails
//! the check when reloaded.

#[path = "common/broken.rs"]
mod broken;

use keel_engine::{Engine, Faults};
use keel_sim::Check;

fn forgetful(e: &mut Engine) {
    e.inject_faults(Faults {
        signal_first_attempt_only: true,
        ..Faults::default()
    });
}

const BOUND: u64 = 300;

fn first_caught() -> keel_sim::SeedResult {
    let defect = "an engine handing a signal only to the attempt it resumed";
    broken::first_caught(
        forgetful,
        Check::InputMismatch,
        BOUND,
        "broken_signals",
        defect,
    )
}

#[test]
fn swarm_catches_a_retry_without_its_signal() {
    let r = first_caught();
    let report = r.report.unwrap_or_default();
    eprintln!("{report}");
    assert!(
        report.contains("carries no signal, but a signal resumed it"),
        "{report}"
    );
}

#[test]
fn the_caught_seed_shrinks_and_still_fails_the_input_check() {
    broken::shrinks_and_still_fails(first_caught().seed, forgetful, Check::InputMismatch);
}

#[test]
fn the_same_seeds_pass_against_the_real_engine() {
    broken::passes_against_the_real_engine(first_caught().seed);
}
