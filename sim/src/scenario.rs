//! The scenario file format: a workload, worker behaviours, a network, a fault schedule
//! in virtual time, and the outcomes that must follow. Swarm runs generate the same
//! structure from a seed, so a failing seed shrinks to a scenario file a person can
//! read, edit and replay. The format is documented in `scenarios/README.md`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Virtual time at which every fault heals and the liveness phase begins.
    pub heal_at_ms: u64,
    /// After healing, every job must be terminal within this long.
    #[serde(default = "default_liveness_ms")]
    pub liveness_ms: u64,
    #[serde(default)]
    pub engine: EngineKnobs,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default, rename = "worker")]
    pub workers: Vec<WorkerSpec>,
    #[serde(default, rename = "job")]
    pub jobs: Vec<JobPlan>,
    #[serde(default, rename = "fault", skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// What scripted workers do, beside (or instead of) their automatic behaviour.
    #[serde(default, rename = "script", skip_serializing_if = "Vec::is_empty")]
    pub script: Vec<ScriptStep>,
    #[serde(default)]
    pub expect: Expect,
}

fn default_liveness_ms() -> u64 {
    600_000
}

/// Engine configuration the scenario overrides; unset knobs keep `Config::default()`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineKnobs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_ttl_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ttl_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_losses: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blacklist_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blacklist_window_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blacklist_cooldown_ms: Option<u64>,
    /// Per-tenant concurrency caps.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tenant_caps: BTreeMap<String, u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSpec {
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
    /// Probability that a message is dropped.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Probability that a message is held back by up to `reorder_ms` extra.
    pub reorder: f64,
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobPlan {
    pub name: String,
    #[serde(default)]
    pub submit_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Keys of the tasks whose outputs are the job's result; empty for its sinks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub result: Vec<String>,
    #[serde(rename = "task")]
    pub tasks: Vec<TaskPlan>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskPlan {
    pub key: String,
    #[serde(default = "default_duration")]
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Upstream task keys; the group kind says how many must succeed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Spanned<String>>,
    #[serde(default)]
    pub group: GroupSpec,
    /// For `group = "quorum"`: how many upstream tasks must succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
    /// The first this-many attempts fail whatever worker runs them (a poison task).
    #[serde(default)]
    pub fail_attempts: u8,
    #[serde(default)]
    pub allow_failure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupSpec {
    #[default]
    AllOf,
    AnyOf,
    Quorum,
}

/// One scheduled fault. Which fields apply depends on `kind`; `load` checks them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub at_ms: u64,
    pub kind: FaultKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<Spanned<String>>,
    /// Pause length, partition length, coordinator downtime, slow fsync window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_ms: Option<u64>,
    /// A crashed worker comes back as a new instance after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_after_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// How long each append takes during a `slow_fsync` window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The worker process vanishes; with `restart_after_ms` it returns as a new instance.
    CrashWorker,
    /// The worker stops entirely (no heartbeats, no renewals) for `for_ms`, then wakes
    /// and carries on as if nothing happened: a zombie.
    PauseWorker,
    /// Messages between `workers` and the coordinator are dropped for `for_ms`.
    Partition,
    /// The worker's clock jumps by `delta_ms`.
    ClockStep,
    /// The coordinator crashes, losing its unsynced log tail, and recovers after
    /// `for_ms` from its snapshot and log.
    CrashCoordinator,
    /// The client cancels `job`.
    CancelJob,
    /// The coordinator's next append fails: the batch is refused (its outputs never
    /// leave), requests are refused for `for_ms` while the log cannot be read, then the
    /// engine is rebuilt from the log.
    FailAppend,
    /// The coordinator crashes during its next append, leaving part of the batch on
    /// disk; it recovers after `for_ms` and must drop the torn batch.
    TornAppend,
    /// One byte of the durable log or snapshot flips and the coordinator crashes; after
    /// `for_ms` its recovery must refuse the log, and the run stops there.
    CorruptLog,
    /// For `for_ms`, every append takes `delay_ms`; the coordinator keeps applying the
    /// next batch meanwhile.
    SlowFsync,
}

impl FaultKind {
    /// Faults that need the coordinator's durable log and shadow.
    pub fn needs_durability(self) -> bool {
        matches!(
            self,
            FaultKind::CrashCoordinator
                | FaultKind::FailAppend
                | FaultKind::TornAppend
                | FaultKind::CorruptLog
                | FaultKind::SlowFsync
        )
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Both,
    /// Only worker-to-coordinator messages are dropped.
    ToCoordinator,
    /// Only coordinator-to-worker messages are dropped.
    FromCoordinator,
}

/// One scripted act of a worker at a virtual time. Which fields apply depends on
/// `do`; `load` checks them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptStep {
    pub at_ms: u64,
    pub worker: Spanned<String>,
    #[serde(rename = "do")]
    pub action: ScriptAction,
    /// `request`: how many credits (default: the worker's free slots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<u32>,
    /// `accept`, `complete`, `fail`: the task, by job name and task key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Spanned<String>>,
    /// `complete`, `fail`: the fence to present (default: the worker's latest lease on
    /// the task), so a stale fence can be sent on purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
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
    #[serde(default, rename = "count", skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<CountExpect>,
}

/// Bounds on how often something happened, e.g. `what = "effect:worker_blacklisted"`,
/// `what = "reject:stale_fence"`, `what = "revoke:job_cancelled"`, optionally only for
/// one worker, job, task or attempt, and only within a window of virtual time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountExpect {
    pub what: Spanned<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<Spanned<String>>,
    /// A task key of `job`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Count only events at or after this virtual time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<u64>,
    /// Count only events before this virtual time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
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
pub fn name_ref(name: impl Into<String>) -> Spanned<String> {
    Spanned::new(0..0, name.into())
}
