//! What the engine keeps about each worker instance and each grant it was offered.

use crate::ids::{Fence, GrantId, InstanceId, TaskId, Time, WorkerId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WorkerStatus {
    Active,
    Draining,
    Lost,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Worker {
    pub id: WorkerId,
    pub instance: InstanceId,
    pub capabilities: Vec<String>,
    pub lane_names: Vec<String>,
    pub lanes: Vec<u32>,
    pub max_concurrency: u32,
    pub status: WorkerStatus,
    pub last_seen: Time,
    pub liveness_timer_at: Time,
    pub credits: u32,
    /// Invariant: exactly the unaccepted grants offered to this worker; none while
    /// `Lost`, and with `leases` at most `max_concurrency`.
    pub grants: BTreeSet<GrantId>,
    /// Invariant: exactly the tasks `Running` on this worker; none while `Lost`.
    pub leases: BTreeSet<TaskId>,
    pub recent_failures: VecDeque<Time>,
    /// Invariant: when set, the readmission timer is armed at it.
    pub blacklisted_until: Option<Time>,
    /// The first grant id issued after the blacklist started: offers numbered below it
    /// predate the blacklist, so the invariant checker can tell them from new ones even
    /// within one millisecond.
    pub blacklisted_from_grant: Option<GrantId>,
    pub lane_cursor: u32,
    /// Which capability sets this worker serves, as dispatch has asked.
    #[serde(skip)]
    pub cover_memo: crate::cover_memo::CoverMemo,
}

impl Worker {
    pub(crate) fn active(&self) -> u32 {
        (self.grants.len() + self.leases.len()) as u32
    }

    pub(crate) fn can_take_work(&self) -> bool {
        self.status == WorkerStatus::Active
            && self.blacklisted_until.is_none()
            && self.credits > 0
            && self.active() < self.max_concurrency
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Grant {
    pub id: GrantId,
    pub task: TaskId,
    pub worker: WorkerId,
    pub instance: InstanceId,
    pub attempt: u32,
    pub offered_at: Time,
    pub expires_at: Time,
    /// Set when the worker accepted; the record lives as long as the lease so a
    /// replayed accept gets the same answer.
    pub accepted: Option<Fence>,
}
