//! The checkers must catch a broken engine. With fencing switched off (a test-only
//! defect compiled in through keel-engine's `fault-injection` feature), the engine
//! accepts a zombie's completion; the swarm must find that within a bounded number of
//! seeds, the failure report must carry what a person needs to act on it, and the
//! failing seed must shrink to a smaller scenario that still fails.

#[path = "common/broken.rs"]
mod broken;

use keel_engine::{Engine, Faults};
use keel_sim::Check;

fn no_fencing(e: &mut Engine) {
    e.inject_faults(Faults {
        ignore_fencing: true,
        ..Faults::default()
    });
}

/// Seeds the swarm may need before it catches the defect.
const BOUND: u64 = 300;

/// The checks a zombie's accepted completion can break first.
fn fencing_check(check: Check) -> bool {
    matches!(
        check,
        Check::StaleCompletion | Check::DoubleCommit | Check::DoubleFinish | Check::EngineInvariant
    )
}

fn first_caught() -> keel_sim::SeedResult {
    let defect = "an engine without fencing";
    broken::first_failing(no_fencing, BOUND, "broken_engine", defect, &fencing_check)
}

#[test]
fn swarm_catches_an_engine_without_fencing() {
    let r = first_caught();
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
    let r = first_caught();
    let check = r.failed.expect("a failed check");
    broken::shrinks_and_still_fails(r.seed, no_fencing, check);
}

#[test]
fn the_same_seeds_pass_against_the_real_engine() {
    broken::passes_against_the_real_engine(first_caught().seed);
}

/// Frames are a command on an attempt too: without fencing, a zombie's emit is
/// appended after the live lease's frames, and the engine's stream invariant (frames
/// in lease order), the simulator's `stale_emit` check or its reading of the stream
/// (`stream_order`: a lease's segment resumed after another's) names it.
#[test]
fn swarm_catches_a_zombie_emit_without_fencing() {
    let defect = "an engine without fencing";
    let by_frames = |check: Check| {
        matches!(
            check,
            Check::StaleEmit | Check::EngineInvariant | Check::StreamOrder
        )
    };
    let r = broken::first_failing(no_fencing, 4_000, "broken_engine", defect, &by_frames);
    let report = r.report.unwrap_or_default();
    eprintln!("{report}");
    assert!(
        report.contains("stream: task")
            || report.contains("frames appended for")
            || report.contains("stream_order"),
        "{report}"
    );
}
