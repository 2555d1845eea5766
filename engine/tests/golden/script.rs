//! A scripted engine session that renders every input and its outputs as text: one line
//! per input with its reply, one indented line per effect. Goldens of this text make a
//! behaviour change show up as a readable diff rather than a digest mismatch.

use keel_engine::*;
use keel_engine_harness::apply_checked;
use std::collections::BTreeMap;
use std::fmt::Write;

pub(crate) struct Script {
    pub engine: Engine,
    now: Time,
    instances: BTreeMap<String, InstanceId>,
    pub text: String,
}

impl Script {
    pub(crate) fn new(config: Config) -> Script {
        Script {
            engine: Engine::new(config),
            now: 0,
            instances: BTreeMap::new(),
            text: String::new(),
        }
    }

    /// Sets the time of the following inputs.
    pub(crate) fn at(&mut self, t: Time) -> &mut Script {
        self.now = t;
        self
    }

    fn apply(&mut self, who: &str, what: String, input: Input) -> Outputs {
        let step = format!("t={} {who}{what}", self.now);
        let out = apply_checked(&mut self.engine, self.now, input, step);
        let _ = write!(self.text, "t={} {who}{what}", self.now);
        if let Some(reply) = &out.reply {
            let _ = write!(self.text, " -> {}", reply_text(reply));
        }
        self.text.push('\n');
        for e in &out.effects {
            let _ = writeln!(self.text, "  {}", effect_text(e));
        }
        out
    }

    pub(crate) fn tick(&mut self) -> Outputs {
        self.apply("", "tick".into(), Input::Tick)
    }

    pub(crate) fn register(&mut self, w: &str, instance: u64, caps: &[&str], conc: u32) -> Outputs {
        self.instances
            .insert(w.to_string(), InstanceId::new(instance));
        let cmd = WorkerCommand::Register {
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            lanes: vec![],
            max_concurrency: conc,
        };
        self.worker(w, cmd)
    }

    /// A command from `w` under the instance it last registered.
    pub(crate) fn worker(&mut self, w: &str, cmd: WorkerCommand) -> Outputs {
        let inst = self.instances.get(w).copied().unwrap_or(InstanceId::new(1));
        let what = command_text(&cmd, inst);
        self.apply(
            &format!("{w} "),
            what,
            Input::worker(&WorkerId::new(w), inst, cmd),
        )
    }

    pub(crate) fn submit(&mut self, spec: JobSpec) -> Outputs {
        let what = format!("submit {} tasks={}", spec.name, spec.tasks.len());
        self.apply("", what, Input::Client(ClientCommand::SubmitJob(spec)))
    }

    /// Accepts a grant and returns the fence of the lease it started.
    pub(crate) fn accept(&mut self, w: &str, grant: GrantId) -> Fence {
        let out = self.worker(w, WorkerCommand::AcceptGrant { grant });
        match out.reply {
            Some(Ok(Accepted::LeaseStarted { fence, .. })) => fence,
            other => panic!("{w} could not accept {grant}: {other:?}"),
        }
    }

    pub(crate) fn complete(&mut self, w: &str, fence: Fence) -> Outputs {
        let output = Payload::from("ok");
        self.worker(w, WorkerCommand::Complete { fence, output })
    }

    pub(crate) fn fail(&mut self, w: &str, fence: Fence, permanent: bool) -> Outputs {
        let error = "boom".to_string();
        self.worker(
            w,
            WorkerCommand::Fail {
                fence,
                error,
                permanent,
            },
        )
    }
}

/// The grants offered in `out`, as (worker, grant, task, attempt).
pub(crate) fn offers(out: &Outputs) -> Vec<(String, GrantId, TaskId, u32)> {
    out.effects
        .iter()
        .filter_map(|e| match e {
            Effect::GrantOffered {
                worker,
                grant,
                task,
                attempt,
                ..
            } => Some((worker.as_str().to_owned(), *grant, *task, *attempt)),
            _ => None,
        })
        .collect()
}

fn command_text(cmd: &WorkerCommand, inst: InstanceId) -> String {
    match cmd {
        WorkerCommand::Register {
            capabilities,
            max_concurrency,
            ..
        } => format!("register {inst} caps={capabilities:?} conc={max_concurrency}"),
        WorkerCommand::Heartbeat => "heartbeat".into(),
        WorkerCommand::RequestWork { credits } => format!("request {credits}"),
        WorkerCommand::Drain => "drain".into(),
        WorkerCommand::Deregister => "deregister".into(),
        WorkerCommand::AcceptGrant { grant } => format!("accept {grant}"),
        WorkerCommand::ReleaseGrant { grant } => format!("release {grant}"),
        WorkerCommand::Renew { fence } => format!("renew {fence}"),
        WorkerCommand::Complete { fence, .. } => format!("complete {fence}"),
        WorkerCommand::Fail {
            fence, permanent, ..
        } => format!("fail {fence}{}", if *permanent { " permanent" } else { "" }),
        WorkerCommand::Suspend {
            fence, waitpoint, ..
        } => format!("suspend {fence} on {waitpoint}"),
        WorkerCommand::ReportUsage {
            fence,
            budget,
            dimension,
            amount,
            dedup_key,
        } => format!("usage {fence} {budget}.{dimension} +{amount} key {dedup_key}"),
        WorkerCommand::Emit {
            fence,
            from,
            frames,
        } => {
            format!("emit {fence} from {from} frames {}", frames.len())
        }
        WorkerCommand::Ack {
            fence,
            from,
            cursor,
        } => format!("ack {fence} {from} to {cursor}"),
    }
}

fn dup(duplicate: bool) -> &'static str {
    if duplicate {
        " (duplicate)"
    } else {
        ""
    }
}

fn reply_text(reply: &Result<Accepted, Rejection>) -> String {
    let ok = match reply {
        Err(r) => return format!("rejected {}: {r}", r.code()),
        Ok(ok) => ok,
    };
    match ok {
        Accepted::JobSubmitted {
            job,
            first_task,
            tasks,
            duplicate,
        } => format!(
            "JobSubmitted {job} tasks {first_task}..t{}{}",
            first_task.get() + *tasks as u64 - 1,
            dup(*duplicate)
        ),
        Accepted::JobCancelled {
            job,
            already_finished,
        } => format!("JobCancelled {job} already_finished={already_finished}"),
        Accepted::Signalled {
            task,
            resumed,
            duplicate,
        } => format!("Signalled {task} resumed={resumed}{}", dup(*duplicate)),
        Accepted::Registered { duplicate, .. } => format!("Registered{}", dup(*duplicate)),
        Accepted::Ok => "Ok".into(),
        Accepted::LeaseStarted {
            fence,
            expires_at,
            duplicate,
        } => format!("LeaseStarted {fence} until {expires_at}{}", dup(*duplicate)),
        Accepted::Renewed { fence, expires_at } => format!("Renewed {fence} until {expires_at}"),
        Accepted::Completed { fence, duplicate } => {
            format!("Completed {fence}{}", dup(*duplicate))
        }
        Accepted::Failed {
            fence,
            duplicate,
            retry_at,
        } => match retry_at {
            Some(at) => format!("Failed {fence} retry at {at}{}", dup(*duplicate)),
            None => format!("Failed {fence} no retry{}", dup(*duplicate)),
        },
        Accepted::Suspended { fence, duplicate } => {
            format!("Suspended {fence}{}", dup(*duplicate))
        }
        Accepted::ScheduleUpdated {
            name,
            next_due,
            duplicate,
        } => format!(
            "ScheduleUpdated {name} next {next_due:?}{}",
            dup(*duplicate)
        ),
        Accepted::UsageRecorded {
            owner,
            budget,
            dimension,
            used,
            duplicate,
        } => format!(
            "UsageRecorded {owner} {budget}.{dimension} used {used}{}",
            dup(*duplicate)
        ),
        Accepted::Emitted {
            fence,
            next,
            dropped,
            duplicate,
        } => format!(
            "Emitted {fence} next {next} dropped {dropped}{}",
            dup(*duplicate)
        ),
        Accepted::Acked {
            fence,
            acked,
            duplicate,
        } => format!("Acked {fence} at {acked}{}", dup(*duplicate)),
    }
}

/// An effect as its engine label followed by its fields; reasons and outcomes by their
/// labels too, so the goldens use the engine's one vocabulary.
fn effect_text(e: &Effect) -> String {
    format!("{} {}", e.label(), effect_fields(e))
}

fn effect_fields(e: &Effect) -> String {
    match e {
        Effect::GrantOffered {
            worker,
            grant,
            job,
            task,
            attempt,
            expires_at,
            ..
        } => format!("{worker} {grant} {job}/{task} attempt {attempt} until {expires_at}"),
        Effect::GrantWithdrawn {
            worker,
            grant,
            task,
            reason,
        } => format!("{worker} {grant} {task} {}", reason.label()),
        Effect::LeaseRevoked {
            worker,
            fence,
            reason,
        } => format!("{worker} {fence} {}", reason.label()),
        Effect::TaskBlocked {
            job,
            task,
            requires,
        } => format!("{job}/{task} requires {requires:?}"),
        Effect::TaskUnblocked { job, task } | Effect::TaskResumed { job, task } => {
            format!("{job}/{task}")
        }
        Effect::TaskRequeued {
            job,
            task,
            attempt,
            reason,
            ready_at,
        } => format!(
            "{job}/{task} attempt {attempt} {} ready at {ready_at}",
            reason.label()
        ),
        Effect::TaskSuspended {
            job,
            task,
            waitpoint,
        } => format!("{job}/{task} on {waitpoint}"),
        Effect::TaskFinished { job, task, outcome } => {
            format!("{job}/{task} {}", outcome_text(outcome))
        }
        Effect::JobFinished { job, outcome } => format!("{job} {}", outcome.label()),
        Effect::WorkerLost { worker, instance } => format!("{worker} {instance}"),
        Effect::WorkerBlacklisted { worker, until } => format!("{worker} until {until}"),
        Effect::ScheduleFired {
            schedule,
            due,
            job,
            first_task,
        } => format!("{schedule} due {due} {job} from {first_task}"),
        Effect::BudgetLimitReached {
            owner,
            budget,
            dimension,
            kind,
            used,
            limit,
        } => format!("{owner} {budget}.{dimension} {kind:?} {used}/{limit}"),
        Effect::WorkerReadmitted { worker } | Effect::WorkerDrained { worker } => {
            worker.to_string()
        }
    }
}

fn outcome_text(o: &TaskOutcome) -> String {
    match o {
        TaskOutcome::Succeeded | TaskOutcome::Skipped => o.label().to_string(),
        TaskOutcome::Failed { error } => format!("{}: {error}", o.label()),
        TaskOutcome::Cancelled { reason } => format!("{}: {}", o.label(), reason.label()),
    }
}
