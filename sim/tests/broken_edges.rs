//! The edge checks must catch an engine that forgets what a consumer acknowledged:
//! with the test-only defect `ignore_acked_cursor` a consumer's read through its
//! streaming edge starts from the producer's segment, not from the cursor the consumer
//! acknowledged, so a retried consumer is given the frames it processed again. Every
//! count stays consistent (the engine's own invariant check passes), so only a check of
//! what each consumer reads can tell. The swarm must find it within 100 seeds, and the
//! failing seed must shrink to a scenario that still fails the check when reloaded.

#[path = "common/broken.rs"]
mod broken;

use keel_engine::{Engine, Faults};
use keel_sim::Check;

fn forget_acks(e: &mut Engine) {
    e.inject_faults(Faults {
        ignore_acked_cursor: true,
        ..Faults::default()
    });
}

const BOUND: u64 = 100;

fn first_caught() -> keel_sim::SeedResult {
    let defect = "an engine ignoring the cursor a consumer acknowledged";
    broken::first_caught(
        forget_acks,
        Check::EdgeRedelivered,
        BOUND,
        "broken_edges",
        defect,
    )
}

#[test]
fn swarm_catches_acknowledged_frames_delivered_again() {
    let r = first_caught();
    let report = r.report.unwrap_or_default();
    eprintln!("seed {}: {report}", r.seed);
    assert!(report.contains("edge_redelivered"), "{report}");
}

#[test]
fn the_caught_seed_shrinks_and_still_fails_the_edge_check() {
    broken::shrinks_and_still_fails(first_caught().seed, forget_acks, Check::EdgeRedelivered);
}

#[test]
fn the_same_seeds_pass_against_the_real_engine() {
    broken::passes_against_the_real_engine(first_caught().seed);
}
