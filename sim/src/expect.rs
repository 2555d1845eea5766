//! Checking a scenario's expected outcomes against what a run produced.

use crate::outcomes::Outcomes;
use crate::scenario::Expect;
use crate::stats::Stats;

/// Every expectation the run missed, as a sentence.
pub(crate) fn unmet(
    expect: &Expect,
    outcomes: &Outcomes,
    stats: &Stats,
    failures: u64,
    stopped: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    match (expect.recovery_refused, stopped) {
        (true, None) => out.push("expected recovery to refuse a corrupt log; it never did".into()),
        (false, Some(why)) => out.push(format!("the run stopped: {why}")),
        _ => {}
    }
    if failures != expect.violations {
        out.push(format!(
            "expected {} violations, got {failures}",
            expect.violations
        ));
    }
    for (job, want) in &expect.jobs {
        let got = outcomes.get(job).unwrap_or("unfinished");
        if got != want.get_ref() {
            out.push(format!("job {job}: expected {}, got {got}", want.get_ref()));
        }
    }
    out.extend(stats.unmet());
    out
}
