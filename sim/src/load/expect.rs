//! Expectations: job outcomes, and what each count counts, for whom, and when; every
//! name is checked against the engine's labels and the simulator's checks.

use super::{Ctx, Declared};
use crate::scenario::{CountExpect, Scenario};
use crate::vocabulary;
use crate::ScenarioError;

pub(super) fn check(ctx: &Ctx, s: &Scenario, declared: &Declared) -> Result<(), ScenarioError> {
    let outcomes = vocabulary::job_outcomes();
    for (name, outcome) in &s.expect.jobs {
        let at = ctx.header("[expect", 0);
        ctx.known_at(name, at, &declared.jobs, "job", "expect.jobs")?;
        if !outcomes.contains(&outcome.get_ref().as_str()) {
            return Err(ctx.err(
                Some(outcome.span()),
                format!(
                    "expect.jobs: job {name:?} cannot end {:?}; outcomes: {}",
                    outcome.get_ref(),
                    outcomes.join(", ")
                ),
            ));
        }
    }
    for (i, c) in s.expect.counts.iter().enumerate() {
        count(ctx, s, declared, c, i)?;
    }
    Ok(())
}

fn count(
    ctx: &Ctx,
    s: &Scenario,
    declared: &Declared,
    c: &CountExpect,
    i: usize,
) -> Result<(), ScenarioError> {
    let at = ctx.header("[[expect.count]]", i);
    vocabulary::check_count(c.what.get_ref())
        .map_err(|why| ctx.err(Some(c.what.span()), format!("expect.count: {why}")))?;
    if let Some(w) = &c.worker {
        ctx.known(w, &declared.workers, "worker", "expect.count")?;
    }
    match (&c.job, &c.task) {
        (Some(job), Some(task)) => ctx.known_task(s, declared, job, task, "expect.count")?,
        (Some(job), None) => ctx.known(job, &declared.jobs, "job", "expect.count")?,
        (None, Some(task)) => {
            return Err(ctx.err(
                Some(task.span()),
                "expect.count: task = \"key\" needs job = \"name\"",
            ))
        }
        (None, None) => {}
    }
    if let (Some(from), Some(until)) = (c.from_ms, c.until_ms) {
        if from > until {
            return Err(ctx.err(
                at,
                format!("expect.count: from_ms {from} is after until_ms {until}"),
            ));
        }
    }
    if let (Some(min), Some(max)) = (c.min, c.max) {
        if min > max {
            return Err(ctx.err(at, format!("expect.count: min {min} exceeds max {max}")));
        }
    }
    Ok(())
}
