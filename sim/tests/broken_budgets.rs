//! The budget check must catch an engine that counts a usage report twice: with the
//! test-only defect `recount_usage`, a report whose dedup key was already counted is
//! counted again while its attempt runs. Only a report the network duplicated or a
//! worker resent shows it, and each still reaches a worker that holds its lease; only
//! a check keeping its own count per dedup key can tell. The swarm must find it within
//! 300 seeds, and the failing seed must shrink to a scenario that still fails the
//! check when reloaded.

#[path = "common/broken.rs"]
mod broken;

use keel_engine::{Engine, Faults};
use keel_sim::Check;

fn recount(e: &mut Engine) {
    e.inject_faults(Faults {
        recount_usage: true,
        ..Faults::default()
    });
}

const BOUND: u64 = 300;

fn first_caught() -> keel_sim::SeedResult {
    let defect = "an engine counting a repeated usage report again";
    broken::first_caught(recount, Check::Budget, BOUND, "broken_budgets", defect)
}

#[test]
fn swarm_catches_a_usage_report_counted_twice() {
    let r = first_caught();
    let report = r.report.unwrap_or_default();
    eprintln!("{report}");
    assert!(report.contains("budget"), "{report}");
}

#[test]
fn the_caught_seed_shrinks_and_still_fails_the_budget_check() {
    broken::shrinks_and_still_fails(first_caught().seed, recount, Check::Budget);
}

#[test]
fn the_same_seeds_pass_against_the_real_engine() {
    broken::passes_against_the_real_engine(first_caught().seed);
}
