//! Short human-readable forms of commands, replies and effects for trace lines.

use crate::checks::{outcome_name, reason_name};
use crate::coordinator::Record;
use crate::trace::TraceLine;
use keel_engine::{Accepted, ClientCommand, Effect, Input, Rejection, TaskOutcome, WorkerCommand};

pub fn record(lines: &mut Vec<TraceLine>, rec: &Record, who: &str) {
    if !matches!(rec.input, Input::Tick) {
        let (cmd, routine) = command(&rec.input);
        let reply = match &rec.outputs.reply {
            Some(r) => reply(r),
            None => String::new(),
        };
        let routine = routine && matches!(rec.outputs.reply, Some(Ok(_)));
        lines.push(TraceLine {
            t: rec.at,
            kind: "cmd",
            who: who.to_string(),
            what: format!("{cmd} -> {reply}"),
            routine,
        });
    }
    for e in &rec.outputs.effects {
        let (who, what) = effect(e);
        lines.push(TraceLine {
            t: rec.at,
            kind: "effect",
            who,
            what,
            routine: false,
        });
    }
}

/// The command's text, and whether it is routine traffic.
fn command(input: &Input) -> (String, bool) {
    match input {
        Input::Tick => ("tick".into(), true),
        Input::Client(ClientCommand::SubmitJob(spec)) => (
            format!("submit {} ({} tasks)", spec.name, spec.tasks.len()),
            false,
        ),
        Input::Client(ClientCommand::CancelJob { job }) => (format!("cancel {job}"), false),
        Input::Client(ClientCommand::Signal {
            task, waitpoint, ..
        }) => (format!("signal {task} {waitpoint}"), false),
        Input::Worker {
            instance, command, ..
        } => match command {
            WorkerCommand::Register {
                capabilities,
                max_concurrency,
                ..
            } => (
                format!(
                    "register {instance} caps=[{}] max={max_concurrency}",
                    capabilities.join(",")
                ),
                false,
            ),
            WorkerCommand::Heartbeat => ("heartbeat".into(), true),
            WorkerCommand::RequestWork { credits } => (format!("request credits={credits}"), true),
            WorkerCommand::Drain => ("drain".into(), false),
            WorkerCommand::Deregister => ("deregister".into(), false),
            WorkerCommand::AcceptGrant { grant } => (format!("accept {grant}"), false),
            WorkerCommand::ReleaseGrant { grant } => (format!("release {grant}"), false),
            WorkerCommand::Renew { fence } => (format!("renew {fence}"), true),
            WorkerCommand::Complete { fence, .. } => (format!("complete {fence}"), false),
            WorkerCommand::Fail {
                fence, permanent, ..
            } => (format!("fail {fence} permanent={permanent}"), false),
            WorkerCommand::Suspend {
                fence, waitpoint, ..
            } => (format!("suspend {fence} on {waitpoint}"), false),
        },
    }
}

fn reply(r: &Result<Accepted, Rejection>) -> String {
    let dup = |d: &bool| if *d { " (duplicate)" } else { "" };
    match r {
        Err(rej) => format!("rejected {}", rej.code()),
        Ok(a) => match a {
            Accepted::JobSubmitted {
                job,
                first_task,
                tasks,
                duplicate,
            } => {
                format!("{job} tasks {first_task}+{tasks}{}", dup(duplicate))
            }
            Accepted::JobCancelled {
                job,
                already_finished,
            } => format!("cancelled {job} already_finished={already_finished}"),
            Accepted::Signalled { task, resumed, .. } => {
                format!("signalled {task} resumed={resumed}")
            }
            Accepted::Registered { duplicate, .. } => format!("registered{}", dup(duplicate)),
            Accepted::Ok => "ok".into(),
            Accepted::LeaseStarted {
                fence,
                expires_at,
                duplicate,
            } => format!("lease {fence} until {expires_at}{}", dup(duplicate)),
            Accepted::Renewed { expires_at, .. } => format!("renewed until {expires_at}"),
            Accepted::Completed { duplicate, .. } => format!("completed{}", dup(duplicate)),
            Accepted::Failed {
                duplicate,
                retry_at,
                ..
            } => match retry_at {
                Some(t) => format!("failed, retry at {t}{}", dup(duplicate)),
                None => format!("failed, no retry{}", dup(duplicate)),
            },
            Accepted::Suspended { duplicate, .. } => format!("suspended{}", dup(duplicate)),
        },
    }
}

fn effect(e: &Effect) -> (String, String) {
    match e {
        Effect::GrantOffered {
            worker,
            grant,
            task,
            attempt,
            expires_at,
            ..
        } => (
            worker.0.clone(),
            format!("grant {grant} {task} attempt {attempt} until {expires_at}"),
        ),
        Effect::GrantWithdrawn {
            worker,
            grant,
            task,
            reason,
        } => (
            worker.0.clone(),
            format!("withdraw {grant} {task} ({})", reason_name(*reason)),
        ),
        Effect::LeaseRevoked {
            worker,
            fence,
            reason,
        } => (
            worker.0.clone(),
            format!("revoke {fence} ({})", reason_name(*reason)),
        ),
        Effect::TaskBlocked {
            job,
            task,
            requires,
        } => (
            job.to_string(),
            format!("blocked {task} requires [{}]", requires.join(",")),
        ),
        Effect::TaskUnblocked { job, task } => (job.to_string(), format!("unblocked {task}")),
        Effect::TaskRequeued {
            job,
            task,
            attempt,
            reason,
            ready_at,
        } => (
            job.to_string(),
            format!(
                "requeue {task} attempt {attempt} ({}) ready at {ready_at}",
                reason_name(*reason)
            ),
        ),
        Effect::TaskSuspended {
            job,
            task,
            waitpoint,
        } => (job.to_string(), format!("suspended {task} on {waitpoint}")),
        Effect::TaskResumed { job, task } => (job.to_string(), format!("resumed {task}")),
        Effect::TaskFinished { job, task, outcome } => (
            job.to_string(),
            format!("finished {task} {}", task_outcome(outcome)),
        ),
        Effect::JobFinished { job, outcome } => {
            (job.to_string(), format!("job {}", outcome_name(*outcome)))
        }
        Effect::WorkerLost { worker, instance } => (worker.0.clone(), format!("lost {instance}")),
        Effect::WorkerBlacklisted { worker, until } => {
            (worker.0.clone(), format!("blacklisted until {until}"))
        }
        Effect::WorkerReadmitted { worker } => (worker.0.clone(), "readmitted".into()),
        Effect::WorkerDrained { worker } => (worker.0.clone(), "drained".into()),
    }
}

fn task_outcome(o: &TaskOutcome) -> String {
    match o {
        TaskOutcome::Succeeded => "succeeded".into(),
        TaskOutcome::Failed { error } => format!("failed: {error}"),
        TaskOutcome::Skipped => "skipped".into(),
        TaskOutcome::Cancelled { reason } => format!("cancelled ({})", reason_name(*reason)),
    }
}
