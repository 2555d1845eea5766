//! Swarm seeds under `cargo test`: every seed draws its own fault profile and must pass
//! every safety check and the liveness check. Split into several tests so the harness
//! runs them in parallel; a sample of seeds is run twice to prove determinism.

use keel_sim::{run_seed, SwarmOptions};

fn seeds(range: std::ops::Range<u64>) {
    let opts = SwarmOptions::default();
    let mut failures = Vec::new();
    let mut events = 0;
    for seed in range.clone() {
        let check = SwarmOptions {
            check_determinism: seed % 10 == 0,
            ..opts.clone()
        };
        let r = run_seed(seed, &check);
        events += r.events;
        if let Some(report) = r.report {
            failures.push(report);
            if failures.len() >= 3 {
                break;
            }
        }
    }
    assert!(events > 0);
    assert!(
        failures.is_empty(),
        "{} seeds of {range:?} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn swarm_seeds_0_to_250() {
    seeds(0..250);
}

#[test]
fn swarm_seeds_250_to_500() {
    seeds(250..500);
}

#[test]
fn swarm_seeds_500_to_750() {
    seeds(500..750);
}

#[test]
fn swarm_seeds_750_to_1000() {
    seeds(750..1000);
}
