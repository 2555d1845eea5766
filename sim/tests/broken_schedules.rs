//! The schedule check must catch an engine that fires a due time twice: with the
//! test-only defect `schedule_refire`, a catch-up after downtime starts from the last
//! due time already run instead of the first one missed, so that one runs again under
//! its own name. Every run still looks like a job, so only a check over the released
//! fires can tell. The swarm must find it within 400 seeds (about a third add a
//! schedule, and some of those crash the coordinator for longer than its grace), and
//! the failing seed must shrink.

#[path = "common/broken.rs"]
mod broken;

use keel_engine::{Engine, Faults};
use keel_sim::Check;

fn refire(e: &mut Engine) {
    e.inject_faults(Faults {
        schedule_refire: true,
        ..Faults::default()
    });
}

const BOUND: u64 = 400;

fn first_caught() -> keel_sim::SeedResult {
    let defect = "an engine refiring the last due time after downtime";
    broken::first_caught(
        refire,
        Check::ScheduleFire,
        BOUND,
        "broken_schedules",
        defect,
    )
}

#[test]
fn swarm_catches_a_due_time_fired_twice() {
    let r = first_caught();
    let report = r.report.unwrap_or_default();
    eprintln!("{report}");
    assert!(report.contains("schedule_fire"), "{report}");
    assert!(report.contains("after it had fired"), "{report}");
}

#[test]
fn the_caught_seed_shrinks_and_still_fails_the_schedule_check() {
    broken::shrinks_and_still_fails(first_caught().seed, refire, Check::ScheduleFire);
}

#[test]
fn the_same_seeds_pass_against_the_real_engine() {
    broken::passes_against_the_real_engine(first_caught().seed);
}
