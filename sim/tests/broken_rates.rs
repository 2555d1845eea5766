//! The rate-limit check must catch an engine whose buckets refill too fast: with the
//! test-only defect `fast_refill`, every bucket refills at twice its configured rate.
//! The first burst after a quiet spell looks right, and each grant still goes to a
//! worker that may hold it; only a check over every window of grants can tell. The
//! swarm must find it within 300 seeds (about a third of them pace grants), and the
//! failing seed must shrink to a scenario that still fails the check when reloaded.

use keel_engine::{Engine, Faults};
use keel_sim::{run_seed, Check, SwarmOptions};

fn fast(e: &mut Engine) {
    e.inject_faults(Faults {
        fast_refill: true,
        ..Faults::default()
    });
}

const BOUND: u64 = 300;

fn first_caught() -> keel_sim::SeedResult {
    let opts = SwarmOptions {
        hook: Some(fast),
        shrink_budget: 0,
        repro_prefix: "cargo test -p keel-sim --test broken_rates -- seed".into(),
        ..SwarmOptions::default()
    };
    (0..BOUND)
        .map(|seed| run_seed(seed, &opts))
        .find(|r| r.failed.is_some())
        .unwrap_or_else(|| {
            panic!("{BOUND} seeds ran against an engine refilling its buckets twice as fast and no check failed")
        })
}

#[test]
fn swarm_catches_buckets_that_refill_too_fast() {
    let r = first_caught();
    assert_eq!(r.failed, Some(Check::RateLimit), "seed {}", r.seed);
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
    let seed = first_caught().seed;
    let (_, scenario) = keel_sim::scenario_for(seed);
    let run_opts = keel_sim::RunOptions {
        hook: Some(fast),
        ..keel_sim::RunOptions::new(seed)
    };
    let first = keel_sim::run(&scenario, run_opts);
    assert_eq!(first.violations[0].check, Check::RateLimit);
    let shrunk = keel_sim::shrink(&scenario, run_opts, Check::RateLimit, 150).scenario;
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
        Some(Check::RateLimit)
    );
}

#[test]
fn the_same_seeds_pass_against_the_real_engine() {
    let seed = first_caught().seed;
    let (_, scenario) = keel_sim::scenario_for(seed);
    let report = keel_sim::run(&scenario, keel_sim::RunOptions::new(seed));
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}
