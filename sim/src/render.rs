//! Short human-readable forms of commands, replies and effects for trace lines.

use crate::data_checks::abbreviate;
use keel_engine::{
    Accepted, ClientCommand, Effect, Input, Payload, Recipient, Rejection, ScheduleCommand,
    TaskInput, TaskOutcome, WorkerCommand,
};

/// The command's text, and whether it is routine traffic.
pub(crate) fn command(input: &Input) -> (String, bool) {
    match input {
        Input::Tick => ("tick".into(), true),
        Input::Configure(_) => ("configure".into(), false),
        Input::Client(ClientCommand::SubmitJob(spec)) => (
            format!("submit {} ({} tasks)", spec.name, spec.tasks.len()),
            false,
        ),
        Input::Client(ClientCommand::CancelJob { job }) => (format!("cancel {job}"), false),
        Input::Client(ClientCommand::Signal {
            task, waitpoint, ..
        }) => (format!("signal {task} {waitpoint}"), false),
        Input::Client(ClientCommand::Schedule(cmd)) => (schedule_command(cmd), false),
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
            WorkerCommand::Complete { fence, output } => (
                format!("complete {fence} output {}", abbreviate(output.as_bytes())),
                false,
            ),
            WorkerCommand::Fail {
                fence, permanent, ..
            } => (format!("fail {fence} permanent={permanent}"), false),
            WorkerCommand::Suspend {
                fence, waitpoint, ..
            } => (format!("suspend {fence} on {waitpoint}"), false),
            WorkerCommand::ReportUsage {
                fence,
                budget,
                dimension,
                amount,
                dedup_key,
            } => (
                format!("usage {fence} {budget}.{dimension}+{amount} key {dedup_key}"),
                false,
            ),
            WorkerCommand::Emit {
                fence,
                from,
                frames,
            } => (
                format!("emit {fence} from {from} frames {}", frames.len()),
                false,
            ),
            WorkerCommand::Ack {
                fence,
                from,
                cursor,
            } => (format!("ack {fence} {from} to {cursor}"), false),
        },
    }
}

pub(crate) fn reply(r: &Result<Accepted, Rejection>) -> String {
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
            Accepted::ScheduleUpdated {
                name,
                next_due,
                duplicate,
            } => match next_due {
                Some(t) => format!("schedule {name} next due {t}{}", dup(duplicate)),
                None => format!("schedule {name} not due{}", dup(duplicate)),
            },
            Accepted::UsageRecorded {
                owner,
                budget,
                dimension,
                used,
                duplicate,
            } => format!("{owner} {budget}.{dimension} used {used}{}", dup(duplicate)),
            Accepted::Emitted {
                next,
                dropped,
                duplicate,
                ..
            } => format!("emitted next {next} dropped {dropped}{}", dup(duplicate)),
            Accepted::Acked {
                acked, duplicate, ..
            } => format!("acked {acked}{}", dup(duplicate)),
        },
    }
}

fn schedule_command(cmd: &ScheduleCommand) -> String {
    match cmd {
        ScheduleCommand::Add(spec) => format!("add schedule {}", spec.name),
        ScheduleCommand::Pause { name } => format!("pause schedule {name}"),
        ScheduleCommand::Resume { name } => format!("resume schedule {name}"),
        ScheduleCommand::Delete { name } => format!("delete schedule {name}"),
    }
}

/// Whom an effect is for (a worker or a job) and what it says.
pub(crate) fn effect(e: &Effect) -> (String, String) {
    let who = match e.recipient() {
        Recipient::Worker(worker) => worker.to_string(),
        Recipient::Job(job) => job.to_string(),
        Recipient::Operator => "operator".to_string(),
    };
    (who, effect_text(e))
}

fn effect_text(e: &Effect) -> String {
    match e {
        Effect::GrantOffered {
            grant,
            task,
            attempt,
            expires_at,
            inputs,
            signal,
            ..
        } => format!(
            "grant {grant} {task} attempt {attempt} until {expires_at}{}",
            grant_data(inputs, signal.as_ref())
        ),
        Effect::GrantWithdrawn {
            grant,
            task,
            reason,
            ..
        } => format!("withdraw {grant} {task} ({})", reason.label()),
        Effect::LeaseRevoked { fence, reason, .. } => {
            format!("revoke {fence} ({})", reason.label())
        }
        Effect::TaskBlocked { task, requires, .. } => {
            format!("blocked {task} requires [{}]", requires.join(","))
        }
        Effect::TaskUnblocked { task, .. } => format!("unblocked {task}"),
        Effect::TaskRequeued {
            task,
            attempt,
            reason,
            ready_at,
            ..
        } => format!(
            "requeue {task} attempt {attempt} ({}) ready at {ready_at}",
            reason.label()
        ),
        Effect::TaskSuspended {
            task, waitpoint, ..
        } => format!("suspended {task} on {waitpoint}"),
        Effect::TaskResumed { task, .. } => format!("resumed {task}"),
        Effect::TaskFinished { task, outcome, .. } => {
            format!("finished {task} {}", task_outcome(outcome))
        }
        Effect::JobFinished { outcome, .. } => format!("job {}", outcome.label()),
        Effect::WorkerLost { instance, .. } => format!("lost {instance}"),
        Effect::WorkerBlacklisted { until, .. } => format!("blacklisted until {until}"),
        Effect::WorkerReadmitted { .. } => "readmitted".into(),
        Effect::WorkerDrained { .. } => "drained".into(),
        Effect::ScheduleFired {
            schedule,
            due,
            first_task,
            ..
        } => format!("fired by {schedule} due {due} from {first_task}"),
        Effect::BudgetLimitReached {
            owner,
            budget,
            dimension,
            kind,
            used,
            limit,
        } => format!("{owner} budget {budget} {dimension} {used} reached {kind:?} limit {limit}"),
    }
}

/// A grant's inputs (`key=output`, `key=absent`) and signal payload, abbreviated;
/// nothing for a grant that carries neither.
fn grant_data(inputs: &[TaskInput], signal: Option<&Payload>) -> String {
    let mut text = String::new();
    if !inputs.is_empty() {
        let shown: Vec<String> = inputs
            .iter()
            .map(|i| match &i.output {
                Some(o) => format!("{}={}", i.key, abbreviate(o.as_bytes())),
                None => format!("{}=absent", i.key),
            })
            .collect();
        text.push_str(&format!(" inputs [{}]", shown.join(" ")));
    }
    if let Some(p) = signal {
        text.push_str(&format!(" signal {}", abbreviate(p.as_bytes())));
    }
    text
}

fn task_outcome(o: &TaskOutcome) -> String {
    match o {
        TaskOutcome::Succeeded | TaskOutcome::Skipped => o.label().into(),
        TaskOutcome::Failed { error } => format!("{}: {error}", o.label()),
        TaskOutcome::Cancelled { reason } => format!("{} ({})", o.label(), reason.label()),
    }
}
