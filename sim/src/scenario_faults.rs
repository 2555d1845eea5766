//! The fault schedule of a scenario: what goes wrong, when, to whom. Part of the
//! scenario file format (`scenarios/README.md`).

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// One scheduled fault. Which fields apply depends on `kind`; `load` checks them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Virtual time it strikes.
    pub at_ms: u64,
    /// What happens.
    pub kind: FaultKind,
    /// The worker it strikes (crash, pause, clock step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<Spanned<String>>,
    /// The workers cut off (partition).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<Spanned<String>>,
    /// The job cancelled (cancel_job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<Spanned<String>>,
    /// Pause length, partition length, coordinator downtime, slow fsync window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_ms: Option<u64>,
    /// A crashed worker comes back as a new instance after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_after_ms: Option<u64>,
    /// How far the clock jumps (clock_step); negative goes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_ms: Option<i64>,
    /// Which messages a partition drops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// How long each append takes during a `slow_fsync` window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

/// What a fault does.
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
    /// Faults that need the coordinator's durable log and state.
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

/// Which way a partition cuts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Both ways.
    #[default]
    Both,
    /// Only worker-to-coordinator messages are dropped.
    ToCoordinator,
    /// Only coordinator-to-worker messages are dropped.
    FromCoordinator,
}
