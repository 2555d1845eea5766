//! Scripted workers: a scenario's `[[script]]` steps make a worker do exactly what a
//! test needs at a given time (ask for a number of credits, hold grants back or accept
//! one, stop renewing, report under a chosen and possibly stale fence, register again)
//! beside what it does on its own.

use crate::scenario::{ScriptAction, ScriptStep};
use crate::worker::{SimWorker, WorkerOutput};
use keel_engine::{Fence, InstanceId, Payload, TaskId, Time, WorkerCommand};

/// What a step did, for the world to carry out and mark.
#[derive(Debug, PartialEq)]
pub enum Performed {
    /// The worker acted; its outputs are in the buffer. The text describes the act.
    Acted(String),
    /// A registration from an earlier process, sent outside the worker's own state.
    SendAs(InstanceId, WorkerCommand, String),
}

/// Carries out `step` on `worker` at its local time `now`. `task` is the step's task,
/// resolved from its job and key. `Err` says why the step could do nothing.
pub fn perform(
    step: &ScriptStep,
    worker: &mut SimWorker,
    now: Time,
    task: Option<TaskId>,
    out: &mut Vec<WorkerOutput>,
) -> Result<Performed, String> {
    let name = step.action.name();
    let text = match step.action {
        ScriptAction::Request => {
            let credits = step.credits.unwrap_or_else(|| worker.free());
            worker.send(now, WorkerCommand::RequestWork { credits }, false, out);
            format!("request credits={credits}")
        }
        ScriptAction::Accept => match worker.accept_held(now, task, out) {
            Some(grant) => format!("accept {grant}"),
            None => return Err("accept: no grant held back to accept".into()),
        },
        ScriptAction::IgnoreGrants => {
            worker.accepting = false;
            name.to_string()
        }
        ScriptAction::AcceptGrants => {
            worker.accepting = true;
            while worker.accept_held(now, None, out).is_some() {}
            name.to_string()
        }
        ScriptAction::SkipRenewals | ScriptAction::RenewLeases => {
            worker.renewing = step.action == ScriptAction::RenewLeases;
            name.to_string()
        }
        ScriptAction::Complete | ScriptAction::Fail => report(step, worker, now, task, out)?,
        ScriptAction::Register => match step.incarnation {
            Some(n) => {
                let command = WorkerCommand::Register {
                    capabilities: worker.params.capabilities.clone(),
                    lanes: Vec::new(),
                    max_concurrency: worker.params.max_concurrency,
                };
                let instance = worker.params.instance(n);
                let text = format!("register as earlier instance {instance}");
                return Ok(Performed::SendAs(instance, command, text));
            }
            None => {
                worker.reincarnate(now, out);
                format!("register as new instance {}", worker.instance())
            }
        },
    };
    Ok(Performed::Acted(text))
}

/// Sends a completion or failure under the step's fence, filled in from the worker's
/// latest lease on the task where the step leaves a part out.
fn report(
    step: &ScriptStep,
    worker: &mut SimWorker,
    now: Time,
    task: Option<TaskId>,
    out: &mut Vec<WorkerOutput>,
) -> Result<String, String> {
    let name = step.action.name();
    let task = task.ok_or_else(|| format!("{name}: the job has not been admitted"))?;
    let latest = worker.latest_fence(task);
    let (attempt, epoch) = match (step.attempt, step.epoch, latest) {
        (Some(a), Some(e), _) => (a, e),
        (a, e, Some(l)) => (a.unwrap_or(l.attempt), e.unwrap_or(l.epoch)),
        _ => {
            return Err(format!(
                "{name}: no lease on {task} known to this worker and no attempt and epoch given"
            ))
        }
    };
    let fence = Fence {
        task,
        attempt,
        epoch,
    };
    let command = match step.action {
        ScriptAction::Complete => WorkerCommand::Complete {
            fence,
            output: Payload::from("ok"),
        },
        _ => WorkerCommand::Fail {
            fence,
            error: "scripted failure".into(),
            permanent: step.permanent.unwrap_or(false),
        },
    };
    worker.send(now, command, false, out);
    Ok(format!("{name} {fence}"))
}
