//! Expectations: job outcomes, and what each count counts, for whom, and when; every
//! name is checked against the engine's labels and the simulator's checks.

use super::{Ctx, Declared};
use crate::scenario::{CountExpect, Scenario};
use crate::vocabulary;
use crate::ScenarioError;

pub(super) fn check(ctx: &Ctx, s: &Scenario, declared: &Declared) -> Result<(), ScenarioError> {
    let outcomes = vocabulary::job_outcomes();
    for (name, outcome) in &s.expect.jobs {
        if !declared.jobs.contains(name.as_str()) {
            let known: Vec<&str> = declared.jobs.iter().copied().collect();
            return Err(ctx.err(
                ctx.header("[expect", 0),
                format!(
                    "expect.jobs names unknown job {name:?}; known: {}",
                    known.join(", ")
                ),
            ));
        }
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
    if let Some(job) = &c.job {
        ctx.known(job, &declared.jobs, "job", "expect.count")?;
    }
    if let Some(task) = &c.task {
        let Some(job) = &c.job else {
            return Err(ctx.err(
                Some(task.span()),
                "expect.count: task = \"key\" needs job = \"name\"",
            ));
        };
        let keys = Declared::keys(s, job.get_ref());
        ctx.known(task, &keys, "task", "expect.count")?;
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
