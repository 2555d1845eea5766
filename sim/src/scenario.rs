//! The scenario file format: a workload, worker behaviours, a network, a fault schedule
//! in virtual time, and the outcomes that must follow. Swarm runs generate the same
//! structure from a seed, so a failing seed shrinks to a scenario file a person can
//! read, edit and replay. The format is documented in `scenarios/README.md`.

use crate::usage::UsagePlan;
use keel_engine::{BudgetSpec, RatePolicy, TenantBudgets};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

pub use crate::scenario_faults::{Direction, Fault, FaultKind};

/// A simulated incident: who runs what, what goes wrong when, and what must follow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Names the scenario in reports and goldens.
    pub name: String,
    /// What the scenario reproduces, for a reader.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Virtual time at which every fault heals and the liveness phase begins.
    pub heal_at_ms: u64,
    /// After healing, every job must be terminal within this long.
    #[serde(default = "default_liveness_ms")]
    pub liveness_ms: u64,
    /// How often a client reads a job's status (the jobs in turn) through the commit
    /// pipeline, checked against what earlier reads saw; 0 never.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reads_every_ms: u64,
    /// Engine configuration overrides.
    #[serde(default)]
    pub engine: EngineKnobs,
    /// Latency, loss, duplication and reordering.
    #[serde(default)]
    pub network: NetworkSpec,
    /// The workers (`[[worker]]`).
    #[serde(default, rename = "worker")]
    pub workers: Vec<WorkerSpec>,
    /// The jobs submitted (`[[job]]`).
    #[serde(default, rename = "job")]
    pub jobs: Vec<JobPlan>,
    /// Recurring jobs a client adds and later deletes (`[[schedule]]`).
    #[serde(default, rename = "schedule", skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<SchedulePlan>,
    /// The fault schedule (`[[fault]]`).
    #[serde(default, rename = "fault", skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// What scripted workers do, beside (or instead of) their automatic behaviour.
    #[serde(default, rename = "script", skip_serializing_if = "Vec::is_empty")]
    pub script: Vec<ScriptStep>,
    /// What must hold when the run ends.
    #[serde(default)]
    pub expect: Expect,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn default_liveness_ms() -> u64 {
    600_000
}

/// Engine configuration the scenario overrides; unset knobs keep `Config::default()`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineKnobs {
    /// `Config::grant_ttl_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_ttl_ms: Option<u64>,
    /// `Config::lease_ttl_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ttl_ms: Option<u64>,
    /// `Config::liveness_timeout_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_timeout_ms: Option<u64>,
    /// `Config::max_losses`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_losses: Option<u32>,
    /// `BlacklistPolicy::threshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blacklist_threshold: Option<u32>,
    /// `BlacklistPolicy::window_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blacklist_window_ms: Option<u64>,
    /// `BlacklistPolicy::cooldown_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blacklist_cooldown_ms: Option<u64>,
    /// Per-tenant concurrency caps.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tenant_caps: BTreeMap<String, u32>,
    /// `Config::rates`: token buckets per tenant, lane and rate key
    /// (`[engine.rates.keys.api] rate = 2, per_ms = 1000, burst = 2`).
    #[serde(default, skip_serializing_if = "RatePolicy::is_empty")]
    pub rates: RatePolicy,
    /// `Config::budgets`: tenant budgets by tenant and name
    /// (`[engine.budgets.acme.daily] limits = { tokens = { hard = 100 } }`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub budgets: TenantBudgets,
}

/// How messages between workers and the coordinator travel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSpec {
    /// Shortest one-way delay.
    pub latency_min_ms: u64,
    /// Longest one-way delay.
    pub latency_max_ms: u64,
    /// Probability that a message is dropped.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Probability that a message is held back by up to `reorder_ms` extra.
    pub reorder: f64,
    /// Longest extra delay of a reordered message.
    pub reorder_ms: u64,
    /// How often the coordinator group-commits its log and releases replies.
    pub sync_interval_ms: u64,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            latency_min_ms: 1,
            latency_max_ms: 5,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_ms: 50,
            sync_interval_ms: 2,
        }
    }
}

/// One simulated worker and how it behaves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSpec {
    /// Its worker id.
    pub name: String,
    /// What it advertises.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Tasks it runs at once.
    #[serde(default = "one")]
    pub max_concurrency: u32,
    /// Multiplies every task's duration on this worker: above 1 is a slow worker.
    #[serde(default = "unit_speed")]
    pub slowness: f64,
    /// Fraction of attempts this worker fails on its own (a flaky worker).
    #[serde(default)]
    pub fail_rate: f64,
    /// Clock rate error in parts per million; positive runs fast.
    #[serde(default)]
    pub drift_ppm: i64,
    /// Virtual time at which the worker starts and registers.
    #[serde(default)]
    pub join_ms: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn one() -> u32 {
    1
}
fn unit_speed() -> f64 {
    1.0
}

/// A job to submit and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobPlan {
    /// Its name, which expectations and faults refer to.
    pub name: String,
    /// Virtual time of the submission.
    #[serde(default)]
    pub submit_ms: u64,
    /// Its tenant; `default` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Its concurrency cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Its deadline after submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Keys of the tasks whose outputs are the job's result; empty for its sinks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub result: Vec<String>,
    /// Its budgets by name (`[job.budgets.llm]`), as `JobSpec::budgets`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub budgets: BTreeMap<String, BudgetSpec>,
    /// Its tasks (`[[job.task]]`).
    #[serde(rename = "task")]
    pub tasks: Vec<TaskPlan>,
}

/// One recurring job and when the client adds and deletes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulePlan {
    /// Its name; runs are named `NAME@<due second>`.
    pub name: String,
    /// Virtual time the client adds it.
    #[serde(default)]
    pub add_ms: u64,
    /// Virtual time the client deletes it.
    pub delete_ms: u64,
    /// A fixed interval; exactly one of `every_ms` and `cron`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_ms: Option<u64>,
    /// A five-field cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// The cron expression's zone; UTC when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// `skip` (default), `queue_one` or `allow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<String>,
    /// `run_once` (default), `run_all` or `skip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misfire: Option<String>,
    /// With `run_all`: the most missed runs started (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<u32>,
    /// How late a due time may run as on time (default 60 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_ms: Option<u64>,
    /// The run's tasks (`[[schedule.task]]`).
    #[serde(rename = "task")]
    pub tasks: Vec<TaskPlan>,
}

/// One task and how it behaves when run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskPlan {
    /// Its key in the job.
    pub key: String,
    /// How long an attempt runs on a worker of normal speed.
    #[serde(default = "default_duration")]
    pub duration_ms: u64,
    /// What a worker must advertise to run it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Upstream task keys; the group kind says how many must succeed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Spanned<String>>,
    /// How many of `after` must succeed.
    #[serde(default)]
    pub group: GroupSpec,
    /// For `group = "quorum"`: how many upstream tasks must succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// Its retry policy's attempt limit.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Its retry policy's base backoff.
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
    /// The first this-many attempts fail whatever worker runs them (a poison task).
    #[serde(default)]
    pub fail_attempts: u8,
    /// Its failure does not fail the job.
    #[serde(default)]
    pub allow_failure: bool,
    /// Overrides the job's priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// The rate key whose bucket (`engine.rates.keys`) paces its grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_key: Option<String>,
    /// What each attempt reports against a budget while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsagePlan>,
    /// Each run no signal resumed suspends at waitpoint "go" when its work is done;
    /// the client signals every suspension it hears of.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waits: bool,
    /// Frames each attempt emits to the task's stream while it runs, one emit each,
    /// and all of them again just before it ends (as a worker resends what it does
    /// not know was stored).
    #[serde(default, skip_serializing_if = "no_frames")]
    pub frames: u8,
    /// How many of the task's frames its stream keeps: 0 every one (durable), 1 only
    /// the newest (a newest-wins stream), N the last N (a bounded stream).
    #[serde(default, skip_serializing_if = "no_frames")]
    pub keep: u8,
    /// Tasks of the job whose streams this one reads while both run, one streaming
    /// edge each: its worker reads each edge a few times while it runs and
    /// acknowledges what it read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stream_from: Vec<String>,
    /// The policy of its edges.
    #[serde(default, skip_serializing_if = "EdgePlan::is_fifo")]
    pub edge: EdgePlan,
    /// For `block`, `drop_oldest` and `error` edges: the frames a producer may run
    /// ahead of the consumer's acknowledgement (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
}

/// A scenario task's edge policy: `fifo` (the default), `newest`, `broadcast`, or a
/// bounded edge named by what a full one does to its producer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgePlan {
    /// Every frame, in order.
    #[default]
    Fifo,
    /// Only the latest frame.
    Newest,
    /// What the producer's stream keeps, never holding it back.
    Broadcast,
    /// Bounded; a full edge refuses the producer's emit until acknowledged.
    Block,
    /// Bounded; a full edge skips the consumer past its oldest frames.
    DropOldest,
    /// Bounded; a full edge fails the producer's attempt.
    Error,
}

impl EdgePlan {
    fn is_fifo(&self) -> bool {
        *self == EdgePlan::Fifo
    }

    /// The engine's policy, bounded edges holding `capacity` frames.
    pub(crate) fn policy(self, capacity: u32) -> keel_engine::EdgePolicy {
        use keel_engine::{EdgePolicy, OnFull};
        let bounded = |on_full| EdgePolicy::Bounded { capacity, on_full };
        match self {
            EdgePlan::Fifo => EdgePolicy::Fifo,
            EdgePlan::Newest => EdgePolicy::Newest,
            EdgePlan::Broadcast => EdgePolicy::Broadcast,
            EdgePlan::Block => bounded(OnFull::Block),
            EdgePlan::DropOldest => bounded(OnFull::DropOldest),
            EdgePlan::Error => bounded(OnFull::Error),
        }
    }
}

fn no_frames(n: &u8) -> bool {
    *n == 0
}

fn default_duration() -> u64 {
    1_000
}
fn default_attempts() -> u32 {
    3
}
fn default_backoff() -> u64 {
    1_000
}

/// How many upstream tasks must succeed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupSpec {
    /// All of them.
    #[default]
    AllOf,
    /// At least one.
    AnyOf,
    /// `quorum` of them.
    Quorum,
}

/// One scripted act of a worker at a virtual time. Which fields apply depends on
/// `do`; `load` checks them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptStep {
    /// Virtual time of the act.
    pub at_ms: u64,
    /// The worker acting.
    pub worker: Spanned<String>,
    /// What it does.
    #[serde(rename = "do")]
    pub action: ScriptAction,
    /// `request`: how many credits (default: the worker's free slots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<u32>,
    /// `accept`, `complete`, `fail`: the task, by job name and task key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<Spanned<String>>,
    /// The task key within `job`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Spanned<String>>,
    /// `complete`, `fail`: the fence to present (default: the worker's latest lease on
    /// the task), so a stale fence can be sent on purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The fence's epoch (default: the latest lease's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// `fail`: no retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permanent: Option<bool>,
    /// `register`: send a registration presenting this process's instance (1 is the
    /// first, at most 999) instead of starting a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<u64>,
}

/// What a scripted worker does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptAction {
    /// Ask for `credits` grants.
    Request,
    /// Accept a grant held back by `ignore_grants`: the one for `job`/`task`, or the
    /// oldest.
    Accept,
    /// Stop accepting grants as they come; they are held until accepted or withdrawn.
    IgnoreGrants,
    /// Accept grants again, and every grant held back.
    AcceptGrants,
    /// Stop renewing leases.
    SkipRenewals,
    /// Renew leases again.
    RenewLeases,
    /// Report the task done under a chosen fence.
    Complete,
    /// Report the task failed under a chosen fence.
    Fail,
    /// Register again: as a new instance (dropping everything held), or with
    /// `incarnation` as a delayed message from an earlier process.
    Register,
}

impl ScriptAction {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            ScriptAction::Request => "request",
            ScriptAction::Accept => "accept",
            ScriptAction::IgnoreGrants => "ignore_grants",
            ScriptAction::AcceptGrants => "accept_grants",
            ScriptAction::SkipRenewals => "skip_renewals",
            ScriptAction::RenewLeases => "renew_leases",
            ScriptAction::Complete => "complete",
            ScriptAction::Fail => "fail",
            ScriptAction::Register => "register",
        }
    }
}

/// What a run must come to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Safety violations the run must report; almost always 0.
    #[serde(default)]
    pub violations: u64,
    /// The run must stop at a recovery that refuses a corrupted log (`corrupt_log`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub recovery_refused: bool,
    /// Final state per job name: succeeded, failed, cancelled, deadline_exceeded,
    /// rejected.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub jobs: BTreeMap<String, Spanned<String>>,
    /// Bounds on how often things happened (`[[expect.count]]`).
    #[serde(default, rename = "count", skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<CountExpect>,
}

/// Bounds on how often something happened, e.g. `what = "effect:worker_blacklisted"`,
/// `what = "reject:stale_fence"`, `what = "revoke:job_cancelled"`, optionally only for
/// one worker, job, task or attempt, and only within a window of virtual time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountExpect {
    /// `kind:name`, e.g. `effect:task_requeued` (see `vocabulary`).
    pub what: Spanned<String>,
    /// Count only events of this worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<Spanned<String>>,
    /// Count only events of this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<Spanned<String>>,
    /// A task key of `job`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Spanned<String>>,
    /// Count only events of this attempt number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Count only events at or after this virtual time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<u64>,
    /// Count only events before this virtual time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// At least this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    /// At most this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

impl Scenario {
    /// The scenario as TOML, e.g. to print a shrunk repro.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render scenario: {e}\n"))
    }
}

/// Makes a name reference for generated scenarios (no source position).
pub(crate) fn name_ref(name: impl Into<String>) -> Spanned<String> {
    Spanned::new(0..0, name.into())
}
