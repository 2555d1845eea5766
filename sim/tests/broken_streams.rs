//! The stream checks must catch an engine that stores a resent emit's frames again:
//! with the test-only defect `reappend_resent_frames` the engine appends every frame of
//! an emit instead of skipping those its lease already holds. Each count stays
//! consistent (the engine's own invariant check passes), so only a reader of the stream
//! can tell. Simulated workers resend a task's frames before it ends, so the swarm must
//! find it within 100 seeds, and the failing seed must shrink to a scenario that still
//! fails the check when reloaded.

#[path = "common/broken.rs"]
mod broken;

use keel_engine::{Engine, Faults};
use keel_sim::Check;

fn reappend(e: &mut Engine) {
    e.inject_faults(Faults {
        reappend_resent_frames: true,
        ..Faults::default()
    });
}

const BOUND: u64 = 100;

fn first_caught() -> keel_sim::SeedResult {
    let defect = "an engine appending a resent emit's frames again";
    broken::first_caught(
        reappend,
        Check::StreamOrder,
        BOUND,
        "broken_streams",
        defect,
    )
}

#[test]
fn swarm_catches_frames_appended_twice() {
    let r = first_caught();
    let report = r.report.unwrap_or_default();
    eprintln!("seed {}: {report}", r.seed);
    assert!(report.contains("stream_order"), "{report}");
}

#[test]
fn the_caught_seed_shrinks_and_still_fails_the_stream_check() {
    broken::shrinks_and_still_fails(first_caught().seed, reappend, Check::StreamOrder);
}

#[test]
fn the_same_seeds_pass_against_the_real_engine() {
    broken::passes_against_the_real_engine(first_caught().seed);
}
