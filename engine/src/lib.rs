//! keel-engine: the pure decision core of Keel.
//!
//! The whole contract on one screen: feed [`Input`]s to [`Engine::apply`] with the
//! current logical time, get back [`Outputs`] (a reply and effects); ask
//! [`Engine::next_wakeup`] when to deliver the next [`Input::Tick`]. Nothing in here
//! reads a clock, draws ambient randomness, spawns a thread or performs I/O, so the
//! same inputs always give the same outputs and the same [`Digest`].
//!
//! ```
//! use keel_engine::*;
//! let mut engine = Engine::new(Config::default());
//! let w = WorkerId::new("w1");
//! let reg = WorkerCommand::Register { capabilities: vec![], lanes: vec![], max_concurrency: 4 };
//! engine.apply(0, Input::worker(&w, InstanceId::new(1), reg));
//! let job = JobSpec::new("hello", vec![TaskSpec::new("a")]);
//! engine.apply(0, Input::Client(ClientCommand::SubmitJob(job)));
//! let out = engine.apply(1, Input::worker(&w, InstanceId::new(1), WorkerCommand::RequestWork { credits: 1 }));
//! assert!(matches!(out.effects[0], Effect::GrantOffered { .. }));
//! assert!(engine.check_invariants().is_ok());
//! ```

mod blacklist;
mod budget_charge;
mod budget_spec;
mod budget_use;
mod budget_view;
mod budgets;
mod config;
mod configure;
mod counts;
mod cover_memo;
mod cron;
mod dag;
mod dataflow;
mod digest;
mod dispatch;
mod dispatch_heads;
mod edge;
mod edge_read;
mod edge_spec;
mod edge_state;
mod edge_validate;
#[cfg(feature = "fault-injection")]
mod faults;
mod floors;
#[cfg(test)]
mod hostile_snapshots;
mod ids;
mod input;
mod intern;
#[cfg(test)]
mod invariant_checks_tests;
#[cfg(test)]
mod invariant_rate_tests;
mod invariants;
mod job;
mod job_end;
mod job_error;
mod key_index;
mod lease;
mod limits;
mod outcome;
mod output;
mod query;
mod queue;
mod rate;
mod ready;
mod reject;
mod resubmit;
mod results;
mod retry;
mod schedule;
mod schedule_spec;
mod schedule_view;
mod slab;
mod spec;
mod state;
mod state_workers;
mod stream;
#[cfg(test)]
mod stream_invariant_tests;
mod stream_read;
mod stream_state;
mod suspend;
mod tick;
mod timers;
#[cfg(test)]
mod transition_asserts;
mod usage;
mod validate;
mod violation;
mod worker;

pub use budget_spec::{
    check_budget_name, BudgetOwner, BudgetSpec, DimensionLimit, LimitKind, OnHard, TenantBudgets,
    ATTEMPTS, ATTEMPT_MS, MAX_BUDGETS_PER_JOB, MAX_BUDGET_NAME_LEN, MAX_DIMENSIONS, MAX_RESET_MS,
    MAX_USAGE_REPORTS, MIN_RESET_MS,
};
pub use budget_view::{BudgetView, DimensionView};
pub use config::{
    BlacklistPolicy, Config, Limits, Rate, RatePolicy, RateScope, TenantPolicy, ALL_LANES,
};
pub use counts::TaskCounts;
pub use cron::CronError;
pub use digest::{Digest, RestoreError, SNAPSHOT_VERSION};
pub use edge_read::{EdgePage, EdgeRead};
pub use edge_spec::{EdgePolicy, OnFull, StreamEdge};
#[cfg(feature = "fault-injection")]
pub use faults::{Faults, INJECTED_PANIC_JOB};
pub use floors::{ConfigError, Unit};
pub use ids::{Fence, GrantId, InstanceId, JobId, TaskId, Time, WorkerId};
pub use input::{ClientCommand, Input, SuspendTimeout, WorkerCommand};
pub use invariants::{InvariantKind, Violation};
pub use output::{
    Accepted, Effect, EndReason, JobOutcome, Outputs, Recipient, TaskInput, TaskOutcome,
};
pub use query::{AttemptView, JobStatus, JobView, TaskStatus, TaskView, WorkerView};
pub use reject::{CapabilityIssue, JobError, Rejection};
pub use resubmit::{retried_from, retry_name, RetryRefusal};
pub use results::{JobResult, TaskOutput};
pub use retry::backoff_delay;
pub use schedule_spec::{
    run_name, Misfire, Overlap, ScheduleCommand, ScheduleSpec, Trigger, MAX_CATCH_UP,
    MAX_SCHEDULES, MIN_INTERVAL_MS,
};
pub use schedule_view::ScheduleView;
pub use spec::{
    DepGroup, GroupKind, JobSpec, Payload, RetryPolicy, StreamMode, TaskSpec, UnsatisfiedPolicy,
};
pub use stream_read::{Attempts, StreamFrame, StreamPage, StreamRead};
pub use stream_state::FRAME_OVERHEAD;
pub use timers::DueTimer;
pub use validate::{check_name, check_token, check_tokens, validate_job, ValidJob};

use serde::{Deserialize, Serialize};
use state::State;

/// What an engine holds, for metrics and for checking the engine-wide limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Jobs held: in flight, or finished and retained (`Limits::max_live_jobs`).
    pub jobs: u64,
    /// Tasks of those jobs (`Limits::max_live_tasks`).
    pub tasks: u64,
    /// Tenant names those jobs use (`Limits::max_tenants`).
    pub tenants: u64,
    /// Lane names jobs and worker records use.
    pub lanes: u64,
    /// Payload, signal and output bytes held (`Limits::max_stored_bytes`).
    pub stored_bytes: u64,
}

/// One coordinator's decision core.
#[derive(Clone, Debug)]
pub struct Engine {
    state: State,
}

impl Engine {
    /// An engine with any configuration. Nothing the engine does panics on one, but a
    /// configuration below its floors (a zero grant TTL, say) leaves a cluster unable
    /// to run anything: drivers check it with `Config::validate` or use `try_new`.
    pub fn new(config: Config) -> Engine {
        Engine {
            state: State::new(config),
        }
    }

    /// An engine, if `config` passes `Config::validate`.
    pub fn try_new(config: Config) -> Result<Engine, ConfigError> {
        config.validate()?;
        Ok(Engine::new(config))
    }

    /// Applies one input at logical time `now`. Timers due at or before `now` fire
    /// first, then the input is handled, then waiting workers receive grants. A `now`
    /// earlier than the engine's clock is treated as the engine's clock.
    pub fn apply(&mut self, now: Time, input: Input) -> Outputs {
        #[cfg(feature = "fault-injection")]
        if self.state.faults.panic_on_injected_job {
            if let Input::Client(ClientCommand::SubmitJob(spec)) = &input {
                assert!(spec.name != INJECTED_PANIC_JOB, "injected panic");
            }
        }
        #[cfg(feature = "fault-injection")]
        if let (Some(from), Input::Tick) = (self.state.faults.panic_on_tick_from, &input) {
            let fires = self.state.timers.next().is_some_and(|due| due <= now);
            assert!(now < from || !fires, "injected panic on a tick");
        }
        let state = &mut self.state;
        tick::advance(state, now);
        let reply = match input {
            Input::Tick => None,
            Input::Client(cmd) => Some(match cmd {
                ClientCommand::SubmitJob(spec) => job::submit(state, spec),
                ClientCommand::CancelJob { job } => job::cancel(state, job),
                ClientCommand::Signal {
                    task,
                    waitpoint,
                    idempotency_key,
                    payload,
                } => suspend::signal(state, task, waitpoint, idempotency_key, payload),
                ClientCommand::Schedule(cmd) => schedule::command(state, cmd),
            }),
            Input::Worker {
                worker,
                instance,
                command,
            } => Some(worker::handle(state, worker, instance, command)),
            Input::Configure(config) => Some(configure::configure(state, *config)),
        };
        edge::settle(state);
        dispatch::run(state);
        Outputs {
            reply,
            effects: std::mem::take(&mut state.effects),
        }
    }

    /// The earliest time at which a `Tick` would change something.
    pub fn next_wakeup(&self) -> Option<Time> {
        self.state.timers.next()
    }

    /// The engine's logical clock: the latest `now` it was given.
    pub fn now(&self) -> Time {
        self.state.now
    }

    /// The configuration the engine was built or restored with.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// A hash of the whole state; equal states have equal digests.
    pub fn digest(&self) -> Digest {
        digest::digest(&self.state)
    }

    /// Serialized state, versioned; `restore` of it gives an engine with the same digest.
    pub fn snapshot(&self) -> Vec<u8> {
        digest::snapshot(&self.state)
    }

    /// An engine from `snapshot` bytes. Refuses (never panics on) bytes of another
    /// version, bytes that do not decode, and a decoded state that breaks an invariant
    /// or carries a configuration below its floors.
    pub fn restore(bytes: &[u8]) -> Result<Engine, RestoreError> {
        Ok(Engine {
            state: digest::restore(bytes)?,
        })
    }

    /// Checks every safety invariant of the current state.
    pub fn check_invariants(&self) -> Result<(), Violation> {
        invariants::check(&self.state)
    }

    /// What an invariant check walks: the tasks held and their dependency edges. A
    /// caller sampling the check can space it by this, so checking a large state costs
    /// a bounded share of the work instead of a share that grows with the state.
    pub fn footprint(&self) -> u64 {
        let edges: u64 = self
            .state
            .tasks
            .iter()
            .map(|(_, t)| t.upstream.len() as u64)
            .sum();
        self.state.tasks.len().saturating_add(edges)
    }

    /// A job's status and every task of it; `UnknownJob` once it is forgotten.
    pub fn describe_job(&self, job: JobId) -> Result<JobView, Rejection> {
        query::describe_job(&self.state, job)
    }

    /// A job's summary without its tasks (cheap: a status read needs no more);
    /// `UnknownJob` once it is forgotten.
    pub fn job_status(&self, job: JobId) -> Result<JobStatus, Rejection> {
        query::status(&self.state, job)
    }

    /// The newest job submitted under `name`, while it is live or retained.
    pub fn job_by_name(&self, name: &str) -> Option<JobId> {
        self.state.job_names.get(name).copied()
    }

    /// One task: its state, attempts and history; `UnknownTask` once its job is
    /// forgotten.
    pub fn describe_task(&self, task: TaskId) -> Result<TaskView, Rejection> {
        query::describe_task(&self.state, task)
    }

    /// Every job held, live or retained, in id order.
    pub fn jobs(&self) -> Vec<JobStatus> {
        query::jobs(&self.state)
    }

    /// How many of the job's tasks are in each state, without copying them.
    pub fn task_counts(&self, job: JobId) -> Result<TaskCounts, Rejection> {
        counts::task_counts(&self.state, job)
    }

    /// The spec the job was admitted with, rebuilt from its tasks.
    pub fn job_spec(&self, job: JobId) -> Result<JobSpec, Rejection> {
        resubmit::job_spec(&self.state, job)
    }

    /// A new job that runs again the tasks of finished job `job` that did not succeed
    /// (dead-letter replay); submit it as any job. Its name links it to `job`
    /// ([`retried_from`]).
    pub fn retry_spec(&self, job: JobId) -> Result<JobSpec, RetryRefusal> {
        resubmit::retry_spec(&self.state, job)
    }

    /// Task `task`'s output: its winning attempt's, none until it has succeeded.
    pub fn task_output(&self, task: TaskId) -> Result<TaskOutput, Rejection> {
        results::output_of(&self.state, task)
    }

    /// A page of task `task`'s output stream, from the cursor `read` names.
    pub fn read_stream(&self, task: TaskId, read: StreamRead) -> Result<StreamPage, Rejection> {
        stream_read::read(&self.state, task, read)
    }

    /// Reads the stream that `consumer` reads from its producer keyed `from`, through
    /// its edge: what the edge's policy owes the consumer from its cursor on.
    pub fn read_edge(
        &self,
        consumer: TaskId,
        from: &str,
        read: EdgeRead,
    ) -> Result<EdgePage, Rejection> {
        edge_read::read(&self.state, consumer, from, read)
    }

    /// The task of job `job` with key `key`, `None` when it has none.
    pub fn task_by_key(&self, job: JobId, key: &str) -> Result<Option<TaskId>, Rejection> {
        results::task_by_key(&self.state, job, key)
    }

    /// The outputs of the job's result tasks (its sinks), finished or not yet.
    pub fn job_result(&self, job: JobId) -> Result<JobResult, Rejection> {
        results::result_of(&self.state, job)
    }

    /// Every worker record held, lost ones included until forgotten, in id order.
    pub fn workers(&self) -> Vec<WorkerView> {
        query::workers(&self.state)
    }

    /// What the engine holds, against `Limits`' engine-wide limits.
    pub fn usage(&self) -> Usage {
        let state = &self.state;
        Usage {
            jobs: state.jobs.len() as u64,
            tasks: state.tasks.len(),
            tenants: state.names.tenants.in_use() as u64,
            lanes: state.names.lanes.in_use() as u64,
            stored_bytes: state.stored_bytes,
        }
    }

    /// Ready tasks waiting in the ready index.
    pub fn queued(&self) -> u64 {
        self.state.ready.len()
    }

    /// Ready tasks waiting in the ready index, per lane name in name order (lanes with
    /// none omitted).
    pub fn queued_by_lane(&self) -> Vec<(String, u64)> {
        let names = &self.state.names.lanes;
        let mut out: Vec<(String, u64)> = self
            .state
            .ready
            .per_lane()
            .into_iter()
            .map(|(lane, n)| (names.name(lane).to_string(), n))
            .collect();
        out.sort();
        out
    }

    #[cfg(feature = "fault-injection")]
    /// Turns on deliberate defects (feature `fault-injection` only).
    pub fn inject_faults(&mut self, faults: Faults) {
        self.state.faults = faults;
    }
}
