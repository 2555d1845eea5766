//! An input that panics the engine. The engine is pure, so the same input on the same
//! state panics again: the coordinator names it (offset, what it is, the job it
//! concerns) so an operator can skip it or cancel its job offline (`keel admin`),
//! instead of a coordinator that lingers half-alive or restarts into the same panic.

use keel_engine::{
    ClientCommand, DueTimer, Engine, Input, JobId, ScheduleCommand, TaskId, Time, WorkerCommand,
};
use keel_log::Offset;
use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The job an input concerns, as far as it can be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobRef {
    /// An input about an existing job.
    Id(JobId),
    /// A submission: the job has no id yet.
    Named(String),
}

impl fmt::Display for JobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobRef::Id(job) => write!(f, "job {job}"),
            JobRef::Named(name) => write!(f, "job {name:?}"),
        }
    }
}

/// Where the panic was met.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Met {
    /// A serving coordinator applied the input; `recorded` says whether it (with the
    /// inputs of its batch before it) was appended to the log before stopping.
    Serving {
        /// Whether its batch reached the log before the coordinator stopped.
        recorded: bool,
    },
    /// Recovery replayed it from the log.
    Replaying,
}

/// An input that panicked the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poisoned {
    /// Its offset in the log (or the offset it would have had).
    pub offset: Offset,
    /// What the input is, in words.
    pub input: String,
    /// The job it concerns, when that can be told, so an operator can cancel it.
    pub job: Option<JobRef>,
    /// The panic's message.
    pub message: String,
    /// Whether serving or recovery met it.
    pub met: Met,
    /// For a timer tick, what it was firing, when the state before it could be read.
    pub tick: Option<Box<TickDue>>,
}

/// The timers a tick that panicked the engine was firing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickDue {
    /// The tick's time.
    pub now: Time,
    /// The first [`TickDue::SHOWN`] timers due, earliest first.
    pub timers: Vec<DueTimer>,
    /// How many were due in all.
    pub total: usize,
}

impl TickDue {
    /// Timers named in a message; a tick after a long outage may fire thousands.
    pub const SHOWN: usize = 8;
}

impl fmt::Display for TickDue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " at {} ms", self.now)?;
        if self.timers.is_empty() {
            return f.write_str(" with no timer due");
        }
        f.write_str(" firing ")?;
        for (i, timer) in self.timers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{timer}")?;
        }
        if self.total > self.timers.len() {
            write!(f, " and {} more", self.total - self.timers.len())?;
        }
        Ok(())
    }
}

impl Poisoned {
    pub(crate) fn new(offset: Offset, input: &Input, message: String, met: Met) -> Poisoned {
        Poisoned {
            offset,
            input: describe(input),
            job: job_named(input),
            message,
            met,
            tick: None,
        }
    }

    /// Names what the input concerns through the engine's state just before it (the
    /// input applied at `now`): the job of a task-level input, and for a timer tick the
    /// timers it was firing and their job, when they all concern one.
    pub(crate) fn explain(&mut self, before: &Engine, now: Time, input: &Input) {
        if self.job.is_none() {
            self.job = task_of(input)
                .and_then(|task| before.describe_task(task).ok())
                .map(|view| JobRef::Id(view.job));
        }
        if matches!(input, Input::Tick) {
            // The engine fires every timer due at its own clock too: a `now` earlier
            // than it is treated as it.
            let now = now.max(before.now());
            let (timers, total) = before.timers_due(now, TickDue::SHOWN);
            let mut jobs = timers.iter().filter_map(|t| t.job);
            if let (None, Some(first)) = (&self.job, jobs.next()) {
                if total == timers.len() && jobs.all(|j| j == first) {
                    self.job = Some(JobRef::Id(first));
                }
            }
            self.tick = Some(Box::new(TickDue { now, timers, total }));
        }
    }

    fn remedy(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run `keel admin skip-input --offset {}` to drop it",
            self.offset
        )?;
        if let Some(JobRef::Id(job)) = &self.job {
            write!(
                f,
                ", or `keel admin cancel-job --job {}` to cancel its job first",
                job.get()
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Poisoned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let job = match &self.job {
            Some(job) => format!(", {job}"),
            None => String::new(),
        };
        let tick = self
            .tick
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        match self.met {
            Met::Serving { recorded } => {
                write!(
                    f,
                    "the engine panicked applying the input at log offset {} ({}{tick}{job}): {}; ",
                    self.offset, self.input, self.message
                )?;
                if recorded {
                    f.write_str("the input is recorded, so the partition will refuse to start until an operator acts: ")?;
                    self.remedy(f)
                } else {
                    f.write_str("the input was not recorded")
                }
            }
            Met::Replaying => {
                write!(
                    f,
                    "log entry {} ({}{tick}{job}) panics the engine when replayed: {}; ",
                    self.offset, self.input, self.message
                )?;
                self.remedy(f)
            }
        }
    }
}

/// Applies `input`, containing a panic. After `Err` the engine may be half-changed and
/// must be discarded.
pub(crate) fn apply_contained(
    engine: &mut Engine,
    now: keel_engine::Time,
    input: Input,
) -> Result<keel_engine::Outputs, String> {
    catch_unwind(AssertUnwindSafe(|| engine.apply(now, input))).map_err(panic_message)
}

/// The text a panic carried.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

fn describe(input: &Input) -> String {
    match input {
        Input::Tick => "a timer tick".to_owned(),
        Input::Configure(_) => "a new configuration".to_owned(),
        Input::Client(ClientCommand::SubmitJob(spec)) => {
            format!("a submission of {} tasks", spec.tasks.len())
        }
        Input::Client(ClientCommand::CancelJob { .. }) => "a cancellation".to_owned(),
        Input::Client(ClientCommand::Signal { task, .. }) => format!("a signal to task {task}"),
        Input::Client(ClientCommand::Schedule(cmd)) => schedule_command(cmd),
        Input::Worker {
            worker, command, ..
        } => {
            let what = match command {
                WorkerCommand::Register { .. } => "a registration".to_owned(),
                WorkerCommand::Heartbeat => "a heartbeat".to_owned(),
                WorkerCommand::RequestWork { credits } => format!("a request for {credits} tasks"),
                WorkerCommand::Drain => "a drain".to_owned(),
                WorkerCommand::Deregister => "a deregistration".to_owned(),
                WorkerCommand::AcceptGrant { grant } => format!("an accept of grant {grant}"),
                WorkerCommand::ReleaseGrant { grant } => format!("a release of grant {grant}"),
                WorkerCommand::Renew { fence } => format!("a renewal of {fence}"),
                WorkerCommand::Complete { fence, .. } => format!("a completion of {fence}"),
                WorkerCommand::Fail { fence, .. } => format!("a failure of {fence}"),
                WorkerCommand::Suspend { fence, .. } => format!("a suspension of {fence}"),
                WorkerCommand::ReportUsage { fence, budget, .. } => {
                    format!("a usage report for budget {budget:?} of {fence}")
                }
                WorkerCommand::Emit { fence, frames, .. } => {
                    format!("an emit of {} frames on {fence}", frames.len())
                }
                WorkerCommand::Ack { fence, from, .. } => {
                    format!("an acknowledgement of {from:?}'s stream on {fence}")
                }
            };
            format!("{what} from worker {worker}")
        }
    }
}

fn schedule_command(cmd: &ScheduleCommand) -> String {
    match cmd {
        ScheduleCommand::Add(spec) => format!("adding schedule {:?}", spec.name),
        ScheduleCommand::Pause { name } => format!("pausing schedule {name:?}"),
        ScheduleCommand::Resume { name } => format!("resuming schedule {name:?}"),
        ScheduleCommand::Delete { name } => format!("deleting schedule {name:?}"),
    }
}

fn job_named(input: &Input) -> Option<JobRef> {
    match input {
        Input::Client(ClientCommand::SubmitJob(spec)) => Some(JobRef::Named(spec.name.clone())),
        Input::Client(ClientCommand::CancelJob { job }) => Some(JobRef::Id(*job)),
        _ => None,
    }
}

fn task_of(input: &Input) -> Option<TaskId> {
    match input {
        Input::Client(ClientCommand::Signal { task, .. }) => Some(*task),
        Input::Worker {
            command:
                WorkerCommand::Renew { fence }
                | WorkerCommand::Complete { fence, .. }
                | WorkerCommand::Fail { fence, .. }
                | WorkerCommand::Suspend { fence, .. },
            ..
        } => Some(fence.task),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{Config, JobSpec, TaskSpec};

    #[test]
    fn a_panic_is_contained_and_named() {
        let mut engine = Engine::new(Config::default());
        let ok = apply_contained(&mut engine, 1, Input::Tick);
        assert!(ok.is_ok());
        let message = catch_unwind(|| panic!("boom {}", 7)).map_err(panic_message);
        assert_eq!(message.err().as_deref(), Some("boom 7"));
        let submit = Input::Client(ClientCommand::SubmitJob(JobSpec::new(
            "nightly",
            vec![TaskSpec::new("a")],
        )));
        let poisoned = Poisoned::new(12, &submit, "boom".into(), Met::Replaying);
        let text = poisoned.to_string();
        assert!(
            text.starts_with("log entry 12 (a submission of 1 tasks, job \"nightly\") panics the engine when replayed: boom; run `keel admin skip-input --offset 12`"),
            "{text}"
        );
        let cancel = Input::Client(ClientCommand::CancelJob { job: JobId::new(4) });
        let served = Poisoned::new(3, &cancel, "x".into(), Met::Serving { recorded: true });
        let text = served.to_string();
        assert!(
            text.contains("at log offset 3 (a cancellation, job j4)"),
            "{text}"
        );
        assert!(text.contains("cancel-job --job 4"), "{text}");
    }

    #[test]
    fn a_tick_is_named_by_its_time_and_a_bounded_list_of_timers() {
        let timer = |n: u64| DueTimer {
            at: n,
            what: format!("lease expiry of t{n}"),
            job: Some(JobId::new(1)),
        };
        let tick = TickDue {
            now: 50,
            timers: (1..=2).map(timer).collect(),
            total: 30,
        };
        assert_eq!(
            tick.to_string(),
            " at 50 ms firing lease expiry of t1 (j1) due at 1 ms, lease expiry of t2 (j1) due at 2 ms and 28 more"
        );
        let idle = TickDue {
            now: 7,
            timers: vec![],
            total: 0,
        };
        assert_eq!(idle.to_string(), " at 7 ms with no timer due");
        // A tick firing timers of several jobs, or more than it lists, names no job.
        let mut engine = Engine::new(keel_engine::Config::default());
        for name in ["a", "b"] {
            let mut spec = JobSpec::new(name, vec![TaskSpec::new("t")]);
            spec.deadline_ms = Some(10);
            engine.apply(0, Input::Client(ClientCommand::SubmitJob(spec)));
        }
        let mut poisoned = Poisoned::new(9, &Input::Tick, "boom".into(), Met::Replaying);
        poisoned.explain(&engine, 100, &Input::Tick);
        assert_eq!(poisoned.job, None);
        assert_eq!(poisoned.tick.as_ref().map(|t| t.total), Some(2));
        let text = poisoned.to_string();
        assert!(
            text.starts_with("log entry 9 (a timer tick at 100 ms firing deadline of j"),
            "{text}"
        );
        assert!(!text.contains("cancel-job"), "{text}");
    }
}
