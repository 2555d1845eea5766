//! The read checks must catch a coordinator that serves status reads without the
//! commit pipeline's read barrier. Swarm profiles read the jobs' status every 200 ms to
//! 5 s in about half the seeds; with `reads_without_barrier` a read runs at once
//! against an engine that may hold inputs the log does not, and within 50 seeds the
//! swarm must flag that and shrink the failing run to a smaller scenario that still
//! fails the same way. The same seeds pass on the real pipeline.

use keel_sim::{run, scenario_for, shrink, Check, RunOptions, Scenario};

/// Seeds the swarm may take before it catches the fault.
const BOUND: u64 = 50;

fn size(s: &Scenario) -> usize {
    s.faults.len() + s.jobs.iter().map(|j| j.tasks.len()).sum::<usize>() + s.workers.len()
}

#[test]
fn swarm_catches_reads_served_before_their_inputs_are_durable_and_shrinks_it() {
    let broken = |seed| RunOptions {
        reads_without_barrier: true,
        ..RunOptions::new(seed)
    };
    let (seed, scenario, report) = (0..BOUND)
        .map(|seed| {
            let (_, scenario) = scenario_for(seed);
            let report = run(&scenario, broken(seed));
            (seed, scenario, report)
        })
        .find(|(_, _, report)| !report.violations.is_empty())
        .unwrap_or_else(|| panic!("{BOUND} seeds served reads early and no check failed"));
    let check = report.violations[0].check;
    assert_eq!(
        check,
        Check::ReadBeforeDurable,
        "seed {seed}: {}",
        report.violations[0]
    );
    let shrunk = shrink(&scenario, broken(seed), check, 150).scenario;
    assert!(size(&shrunk) < size(&scenario), "nothing was shrunk");
    let again = run(&shrunk, broken(seed));
    assert_eq!(again.violations.first().map(|v| v.check), Some(check));
}

#[test]
fn the_same_seeds_read_through_the_pipeline_pass_and_read_often() {
    let mut reads = 0;
    for seed in 0..BOUND {
        let (_, scenario) = scenario_for(seed);
        let report = run(&scenario, RunOptions::new(seed));
        assert!(
            report.violations.is_empty(),
            "seed {seed}: {}",
            report.violations[0]
        );
        assert!(
            scenario.reads_every_ms > 0 || report.reads == 0,
            "seed {seed} read without the knob"
        );
        reads += report.reads;
    }
    assert!(reads > 1_000, "only {reads} reads ran in {BOUND} seeds");
}
