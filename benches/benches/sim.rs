//! Simulator throughput: simulated events per second of wall time, on one core.
//! Targets: at least 1,000,000 events per second, and a one-hour virtual chaos run
//! with 50 workers and 10,000 tasks in under one second.
//!
//! History checks (leases, fences, caps, blacklist, capabilities) run after every event
//! in every case. The engine's own `check_invariants` walks the whole engine state, so
//! its cost grows with the state and dominates large runs; each case says how often it
//! runs (after every apply, every 1,000 applies, or once at the end).
//!
//! - `swarm_seeds_*`: 50 swarm seeds, each its own fault profile.
//! - `chaos_1h_50w_10k_*`: one long chaos run.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use keel_sim::{run, scenario_for, Profile, RunOptions, Scenario};
use std::time::Duration;

fn swarm_seeds(c: &mut Criterion) {
    let seeds: Vec<(u64, Scenario)> = (0..50).map(|s| (s, scenario_for(s).1)).collect();
    let events: u64 = seeds
        .iter()
        .map(|(s, sc)| run(sc, RunOptions::new(*s)).events)
        .sum();
    let mut g = c.benchmark_group("sim");
    g.throughput(Throughput::Elements(events));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for (name, check_every) in [
        ("swarm_seeds_0_to_49_invariants_every_apply", 1),
        ("swarm_seeds_0_to_49_invariants_at_end", 0),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                seeds
                    .iter()
                    .map(|(s, sc)| {
                        run(
                            sc,
                            RunOptions {
                                check_every,
                                ..RunOptions::new(*s)
                            },
                        )
                        .events
                    })
                    .sum::<u64>()
            })
        });
    }
    g.finish();
}

fn chaos_at_scale(c: &mut Criterion) {
    let scenario = Profile::at_scale(0, 50, 10_000, 3_600_000).scenario();
    let mut g = c.benchmark_group("sim");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for (name, check_every) in [
        ("chaos_1h_50w_10k_invariants_every_1000", 1_000),
        ("chaos_1h_50w_10k_invariants_at_end", 0),
    ] {
        let opts = RunOptions {
            check_every,
            ..RunOptions::new(0)
        };
        let r = run(&scenario, opts);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        g.throughput(Throughput::Elements(r.events));
        g.bench_function(name, |b| b.iter(|| run(&scenario, opts).events));
    }
    g.finish();
}

criterion_group!(benches, swarm_seeds, chaos_at_scale);
criterion_main!(benches);
