//! A script step: the worker it drives, the fields its action takes, and the task it
//! names.

use super::{Ctx, Declared};
use crate::scenario::{Scenario, ScriptAction, ScriptStep};
use crate::ScenarioError;

/// A worker's instance ids are `ordinal * 1000 + incarnation`, so incarnations stay
/// below 1000.
const MAX_INCARNATION: u64 = 999;

/// The optional fields each action takes; any other field set is a mistake.
fn takes(action: ScriptAction) -> &'static [&'static str] {
    match action {
        ScriptAction::Request => &["credits"],
        ScriptAction::Accept => &["job", "task"],
        ScriptAction::Complete => &["job", "task", "attempt", "epoch"],
        ScriptAction::Fail => &["job", "task", "attempt", "epoch", "permanent"],
        ScriptAction::Register => &["incarnation"],
        ScriptAction::IgnoreGrants
        | ScriptAction::AcceptGrants
        | ScriptAction::SkipRenewals
        | ScriptAction::RenewLeases => &[],
    }
}

pub(super) fn check(
    ctx: &Ctx,
    s: &Scenario,
    declared: &Declared,
    step: &ScriptStep,
    i: usize,
) -> Result<(), ScenarioError> {
    let at = ctx.header("[[script]]", i);
    let name = step.action.name();
    ctx.known(&step.worker, &declared.workers, "worker", "script")?;
    let set = [
        ("credits", step.credits.is_some()),
        ("job", step.job.is_some()),
        ("task", step.task.is_some()),
        ("attempt", step.attempt.is_some()),
        ("epoch", step.epoch.is_some()),
        ("permanent", step.permanent.is_some()),
        ("incarnation", step.incarnation.is_some()),
    ];
    let allowed = takes(step.action);
    if let Some((field, _)) = set.iter().find(|(f, on)| *on && !allowed.contains(f)) {
        let fields = match allowed {
            [] => "no fields".to_string(),
            some => some.join(", "),
        };
        return Err(ctx.err(at, format!("do = {name:?} takes {fields}, not {field}")));
    }
    let needs_task = matches!(step.action, ScriptAction::Complete | ScriptAction::Fail);
    match (&step.job, &step.task) {
        (Some(job), Some(task)) => ctx.known_task(s, declared, job, task, "script")?,
        (None, None) if !needs_task => {}
        _ => {
            return Err(ctx.err(
                at,
                format!("do = {name:?} names its task with both job = \"name\" and task = \"key\""),
            ))
        }
    }
    if step
        .incarnation
        .is_some_and(|n| !(1..=MAX_INCARNATION).contains(&n))
    {
        return Err(ctx.err(
            at,
            format!("incarnation counts from 1 to {MAX_INCARNATION}"),
        ));
    }
    Ok(())
}
