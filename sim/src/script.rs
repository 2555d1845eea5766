//! Scripted workers: a scenario's `[[script]]` steps make a worker do exactly what a
//! test needs at a given time (ask for a number of credits, hold grants back or accept
//! one, stop renewing, report under a chosen and possibly stale fence, register again)
//! beside what it does on its own.

use crate::scenario::{ScriptAction, ScriptStep};
use crate::worker::{SimWorker, WorkerOutput};
use keel_engine::{Fence, InstanceId, Payload, TaskId, Time, WorkerCommand};

/// What a step did, for the world to carry out and mark.
#[derive(Debug, PartialEq)]
pub(crate) enum Performed {
    /// The worker acted; its outputs are in the buffer. The text describes the act.
    Acted(String),
    /// A command sent beside the worker's own (under the given instance, its answer
    /// unread): a scripted work request or report, or a registration from an earlier
    /// process.
    SendAs(InstanceId, WorkerCommand, String),
}

/// Carries out `step` on `worker` at its local time `now`. `task` is the step's task,
/// resolved from its job and key. `Err` says why the step could do nothing.
pub(crate) fn perform(
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
            let command = WorkerCommand::RequestWork { credits };
            let text = format!("request credits={credits}");
            return Ok(Performed::SendAs(worker.instance(), command, text));
        }
        ScriptAction::Accept if step.task.is_some() && task.is_none() => {
            return Err("accept: the job has not been admitted".into())
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
        ScriptAction::Complete | ScriptAction::Fail => {
            let (command, text) = report(step, worker, task)?;
            return Ok(Performed::SendAs(worker.instance(), command, text));
        }
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
    worker: &SimWorker,
    task: Option<TaskId>,
) -> Result<(WorkerCommand, String), String> {
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
            output: Payload::from(crate::work::output_of(fence)),
        },
        _ => WorkerCommand::Fail {
            fence,
            error: "scripted failure".into(),
            permanent: step.permanent.unwrap_or(false),
        },
    };
    Ok((command, format!("{name} {fence}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::name_ref;
    use crate::work::TaskWork;
    use crate::worker::WorkerParams;
    use keel_engine::{Effect, GrantId, JobId, WorkerId};

    fn worker() -> SimWorker {
        SimWorker::new(WorkerParams {
            id: WorkerId::new("w1"),
            capabilities: vec![],
            max_concurrency: 2,
            slowness: 1.0,
            fail_rate: 0.0,
            lease_ttl_ms: 3_000,
            liveness_timeout_ms: 9_000,
            answer_timeout_ms: 1_000,
            ordinal: 1,
        })
    }

    fn step(action: ScriptAction) -> ScriptStep {
        ScriptStep {
            at_ms: 0,
            worker: name_ref("w1"),
            action,
            credits: None,
            job: None,
            task: None,
            attempt: None,
            epoch: None,
            permanent: None,
            incarnation: None,
        }
    }

    /// A registered worker holding back a grant for task 7.
    fn holding() -> SimWorker {
        let mut w = worker();
        let mut out = Vec::new();
        w.boot(0, &mut out);
        let register = out.iter().find_map(|o| match o {
            WorkerOutput::Send(req, WorkerCommand::Register { .. }) => Some(*req),
            _ => None,
        });
        let registered = Ok(keel_engine::Accepted::Registered {
            worker: WorkerId::new("w1"),
            instance: w.instance(),
            duplicate: false,
        });
        w.on_reply(1, register.expect("registers"), &registered, &mut out);
        perform(&step(ScriptAction::IgnoreGrants), &mut w, 2, None, &mut out).unwrap();
        let offer = Effect::GrantOffered {
            worker: WorkerId::new("w1"),
            grant: GrantId::new(3),
            job: JobId::new(1),
            task: TaskId::new(7),
            key: "t".into(),
            attempt: 1,
            payload: TaskWork::default().encode(),
            inputs: vec![],
            signal: None,
            streams: vec![],
            expires_at: 100,
        };
        w.on_effect(3, &offer, &mut out);
        w
    }

    #[test]
    fn an_accept_for_a_task_not_yet_known_accepts_nothing() {
        let mut w = holding();
        let named = ScriptStep {
            job: Some(name_ref("j")),
            task: Some(name_ref("a")),
            ..step(ScriptAction::Accept)
        };
        let mut out = Vec::new();
        assert!(perform(&named, &mut w, 4, None, &mut out).is_err());
        assert!(out.is_empty(), "{out:?}");
        let done = perform(&named, &mut w, 4, Some(TaskId::new(7)), &mut out);
        assert_eq!(done, Ok(Performed::Acted("accept g3".into())));
    }

    #[test]
    fn a_report_without_a_fence_to_present_is_refused() {
        let mut w = holding();
        let mut out = Vec::new();
        let complete = step(ScriptAction::Complete);
        assert!(perform(&complete, &mut w, 4, Some(TaskId::new(7)), &mut out).is_err());
        let stale = ScriptStep {
            attempt: Some(1),
            epoch: Some(1),
            ..complete
        };
        let done = perform(&stale, &mut w, 4, Some(TaskId::new(7)), &mut out);
        let fence = Fence {
            task: TaskId::new(7),
            attempt: 1,
            epoch: 1,
        };
        let complete = WorkerCommand::Complete {
            fence,
            output: Payload::from(crate::work::output_of(fence)),
        };
        let sent = Performed::SendAs(w.instance(), complete, "complete t7/a1/e1".into());
        assert_eq!(done, Ok(sent));
    }
}
