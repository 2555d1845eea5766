//! The rate-limit check must catch an engine whose buckets refill too fast: with the
//! test-only defect `fast_refill`, every bucket refills at twice its configured rate.
//! The first burst after a quiet spell looks right, and each grant still goes to a
//! worker that may hold it; only a check over every window of grants can tell. The
//! swarm must find it within 300 seeds (about a third of them pace grants), and the
//! failing seed must shrink to a scenario that still fails the check when reloaded.

#[path = "common/broken.rs"]
mod broken;

use keel_engine::{Engine, Faults};
use keel_sim::Check;

fn fast(e: &mut Engine) {
    e.inject_faults(Faults {
        fast_refill: true,
        ..Faults::default()
    });
}

const BOUND: u64 = 300;

fn first_caught() -> keel_sim::SeedResult {
    let defect = "an engine refilling its buckets twice as fast";
    broken::first_caught(fast, Check::RateLimit, BOUND, "broken_rates", defect)
}

#[test]
fn swarm_catches_buckets_that_refill_too_fast() {
    let r = first_caught();
    let report = r.report.unwrap_or_default();
    eprintln!("{report}");
    assert!(report.contains("rate_limit"), "{report}");
    assert!(
        report.contains("over the key bucket \"api\"")
            || report.contains("over the lane bucket \"default\""),
        "{report}"
    );
}

#[test]
fn the_caught_seed_shrinks_and_still_fails_the_rate_check() {
    broken::shrinks_and_still_fails(first_caught().seed, fast, Check::RateLimit);
}

#[test]
fn the_same_seeds_pass_against_the_real_engine() {
    broken::passes_against_the_real_engine(first_caught().seed);
}
