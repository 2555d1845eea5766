//! Checking a scenario's expected outcomes against what a run produced.

use crate::ledger::Ledger;
use crate::scenario::Expect;

/// Every expectation the run missed, as a sentence.
pub fn unmet(expect: &Expect, ledger: &Ledger, violations: u64) -> Vec<String> {
    let mut out = Vec::new();
    if violations != expect.violations {
        out.push(format!(
            "expected {} violations, got {violations}",
            expect.violations
        ));
    }
    for (job, want) in &expect.jobs {
        let got = ledger.job_outcome(job).unwrap_or("unfinished");
        if got != want {
            out.push(format!("job {job}: expected {want}, got {got}"));
        }
    }
    for c in &expect.counts {
        let (kind, what) = c.what.split_once(':').unwrap_or((c.what.as_str(), ""));
        let n = ledger.counted(kind, what, c.worker.as_deref());
        let whose = c
            .worker
            .as_deref()
            .map(|w| format!(" for {w}"))
            .unwrap_or_default();
        if c.min.is_some_and(|m| n < m) {
            out.push(format!(
                "{}{whose}: expected at least {}, got {n}",
                c.what,
                c.min.unwrap_or(0)
            ));
        }
        if c.max.is_some_and(|m| n > m) {
            out.push(format!(
                "{}{whose}: expected at most {}, got {n}",
                c.what,
                c.max.unwrap_or(0)
            ));
        }
    }
    out
}
