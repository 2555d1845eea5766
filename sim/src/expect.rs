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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::name_ref;

    fn check(
        expect: &Expect,
        outcomes: &Outcomes,
        failures: u64,
        stopped: Option<&str>,
    ) -> Vec<String> {
        unmet(
            expect,
            outcomes,
            &Stats::new(&expect.counts),
            failures,
            stopped,
        )
    }

    #[test]
    fn a_run_as_expected_misses_nothing() {
        let mut expect = Expect::default();
        expect.jobs.insert("j".into(), name_ref("succeeded"));
        let mut outcomes = Outcomes::default();
        outcomes.finished("j", "succeeded");
        assert_eq!(check(&expect, &outcomes, 0, None), Vec::<String>::new());
        let refusing = Expect {
            recovery_refused: true,
            ..Expect::default()
        };
        let stopped = Some("recovery refused a corrupt log");
        assert_eq!(
            check(&refusing, &outcomes, 0, stopped),
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_missed_expectation_is_a_sentence() {
        let none = Outcomes::default();
        let refusing = Expect {
            recovery_refused: true,
            ..Expect::default()
        };
        assert_eq!(
            check(&refusing, &none, 0, None),
            ["expected recovery to refuse a corrupt log; it never did"]
        );
        assert_eq!(
            check(&Expect::default(), &none, 0, Some("engine panicked")),
            ["the run stopped: engine panicked"]
        );
        assert_eq!(
            check(&Expect::default(), &none, 2, None),
            ["expected 0 violations, got 2"]
        );
        let mut jobs = Expect::default();
        jobs.jobs.insert("a".into(), name_ref("succeeded"));
        jobs.jobs.insert("b".into(), name_ref("succeeded"));
        let mut outcomes = Outcomes::default();
        outcomes.finished("a", "failed");
        assert_eq!(
            check(&jobs, &outcomes, 0, None),
            [
                "job a: expected succeeded, got failed",
                "job b: expected succeeded, got unfinished"
            ]
        );
    }

    #[test]
    fn a_count_out_of_bounds_is_missed() {
        let expect: Expect =
            toml::from_str("[[count]]\nwhat = \"effect:task_requeued\"\nmin = 1\n").unwrap();
        assert_eq!(
            check(&expect, &Outcomes::default(), 0, None),
            ["effect:task_requeued: expected at least 1, got 0"]
        );
    }
}
