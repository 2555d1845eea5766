//! The engine's whole state. Everything here is serialized into snapshots and hashed
//! into the digest, so it holds only ordered collections and plain data.

use crate::config::Config;
use crate::ids::{Fence, GrantId, InstanceId, JobId, TaskId, Time, WorkerId};
use crate::input::SuspendTimeout;
use crate::intern::{CapSetId, Interned};
use crate::output::{Effect, EndReason, JobOutcome, TaskOutcome};
use crate::ready::{ReadyIndex, ReadyKey};
use crate::slab::Slab;
use crate::spec::{GroupKind, Payload, RetryPolicy, UnsatisfiedPolicy};
use crate::timers::Timers;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct State {
    pub config: Config,
    pub now: Time,
    pub next_job: u64,
    pub next_task: u64,
    pub next_grant: u64,
    pub jobs: BTreeMap<JobId, Job>,
    pub job_names: BTreeMap<String, JobId>,
    pub tasks: Slab<Task>,
    pub workers: BTreeMap<WorkerId, Worker>,
    pub grants: BTreeMap<GrantId, Grant>,
    pub ready: ReadyIndex,
    pub timers: Timers,
    /// Workers that asked for work and still have credits.
    pub demand: BTreeSet<WorkerId>,
    /// Where the next dispatch round starts, so no worker is always served first.
    pub dispatch_cursor: Option<WorkerId>,
    pub names: Interned,
    /// Per interned tenant id: tasks holding a grant or lease, and jobs in flight.
    pub tenants: Vec<TenantLoad>,
    /// Bytes of payloads, signal payloads and outputs held by tasks; see
    /// `Limits::max_stored_bytes`.
    pub stored_bytes: u64,
    /// Effects produced by the input being applied; drained by `apply`.
    #[serde(skip)]
    pub effects: Vec<Effect>,
    /// Something changed that may let a waiting worker receive a grant.
    #[serde(skip)]
    pub dispatch_dirty: bool,
    #[cfg(feature = "fault-injection")]
    #[serde(skip)]
    pub faults: crate::faults::Faults,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub(crate) struct TenantLoad {
    pub active: u32,
    pub jobs_in_flight: u32,
    /// Copied from the tenant policy when the tenant is first seen.
    pub cap: Option<u32>,
    pub weight: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Job {
    pub id: JobId,
    pub name: String,
    /// Hash of the submitted spec, to tell a duplicate submission from a conflict.
    pub spec_hash: u64,
    pub tenant: u32,
    pub lane: u32,
    pub first_task: TaskId,
    pub task_count: u32,
    pub max_concurrency: Option<u32>,
    pub submitted_at: Time,
    pub deadline_at: Option<Time>,
    /// Tasks not yet terminal.
    pub remaining: u32,
    /// Tasks holding a grant or a lease.
    pub active: u32,
    /// Ready tasks in the ready index.
    pub queued: u32,
    /// Ready tasks held back because the job is at its concurrency cap.
    pub parked: BTreeSet<ReadyKey>,
    /// Tasks whose failure or cancellation fails the job.
    pub failed: u32,
    /// Set when the job is being ended from outside (cancel, deadline).
    pub forced: Option<(JobOutcome, EndReason)>,
    pub end: Option<JobEnd>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JobEnd {
    pub outcome: JobOutcome,
    pub at: Time,
}

impl Job {
    pub(crate) fn task_ids(&self) -> impl Iterator<Item = TaskId> {
        let first = self.first_task.0;
        (first..first.saturating_add(self.task_count as u64)).map(TaskId)
    }

    pub(crate) fn at_cap(&self) -> bool {
        self.max_concurrency
            .is_some_and(|cap| self.active.saturating_add(self.queued) >= cap)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Task {
    pub id: TaskId,
    pub job: JobId,
    pub key: String,
    pub payload: Payload,
    pub lane: u32,
    pub tenant: u32,
    pub capset: CapSetId,
    pub priority: i32,
    pub retry: RetryPolicy,
    pub attempt_timeout_ms: Option<u64>,
    pub not_before: Time,
    pub allow_failure: bool,
    pub group: Option<Group>,
    pub downstream: Vec<TaskId>,
    pub state: TaskState,
    /// Current attempt number, from 1; a new attempt starts after a failure or a loss.
    pub attempt: u32,
    /// Increases every time a lease on this task starts.
    pub epoch: u64,
    pub failures: u32,
    pub losses: u32,
    pub history: Vec<AttemptRecord>,
    /// Signals received, by idempotency key.
    pub signals: BTreeMap<String, Payload>,
    pub output: Option<Payload>,
}

impl Task {
    pub(crate) fn ready_key(&self) -> ReadyKey {
        ReadyKey {
            rank: -(self.priority as i64),
            task: self.id,
        }
    }

    pub(crate) fn is_terminal(&self) -> bool {
        matches!(self.state, TaskState::Done(_))
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Group {
    pub kind: GroupKind,
    pub total: u32,
    pub needed: u32,
    pub succeeded: u32,
    pub unsucceeded: u32,
    pub on_unsatisfied: UnsatisfiedPolicy,
}

impl Group {
    pub(crate) fn satisfied(&self) -> bool {
        self.succeeded >= self.needed
    }
    pub(crate) fn unsatisfiable(&self) -> bool {
        self.unsucceeded > self.total.saturating_sub(self.needed)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ReadyPlace {
    Queued,
    Parked,
    Blocked,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TaskState {
    /// Waiting for its dependency group.
    Waiting,
    /// Not before `until` (a delay or a retry backoff).
    Delayed {
        until: Time,
    },
    Ready {
        place: ReadyPlace,
    },
    Offered {
        grant: GrantId,
    },
    Running(Lease),
    Suspended {
        waitpoint: String,
        timeout_at: Option<Time>,
        on_timeout: SuspendTimeout,
    },
    Done(TaskOutcome),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lease {
    pub grant: GrantId,
    pub worker: WorkerId,
    pub instance: InstanceId,
    pub started_at: Time,
    pub expires_at: Time,
    /// When the lease-expiry timer is armed; renewals move `expires_at` only, and the
    /// timer re-arms itself when it fires early.
    pub timer_at: Time,
    pub timeout_at: Option<Time>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AttemptRecord {
    pub attempt: u32,
    pub epoch: u64,
    pub worker: WorkerId,
    pub started_at: Time,
    pub ended: Option<(Time, AttemptEnd)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum AttemptEnd {
    Succeeded,
    /// `reported` is false when the engine ended the attempt (attempt timeout), so a
    /// late report from the worker is refused instead of being taken as a replay.
    Failed {
        error: String,
        retry_at: Option<Time>,
        reported: bool,
    },
    Ended(EndReason),
}

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
    pub grants: BTreeSet<GrantId>,
    pub leases: BTreeSet<TaskId>,
    pub recent_failures: VecDeque<Time>,
    pub blacklisted_until: Option<Time>,
    /// The first grant id issued after the blacklist started: offers numbered below it
    /// predate the blacklist, so the invariant checker can tell them from new ones even
    /// within one millisecond.
    pub blacklisted_from_grant: Option<GrantId>,
    pub lane_cursor: u32,
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

impl State {
    pub(crate) fn new(config: Config) -> Self {
        State {
            config,
            now: 0,
            next_job: 1,
            next_task: 1,
            next_grant: 1,
            jobs: BTreeMap::new(),
            job_names: BTreeMap::new(),
            tasks: Slab::default(),
            workers: BTreeMap::new(),
            grants: BTreeMap::new(),
            ready: ReadyIndex::default(),
            timers: Timers::default(),
            demand: BTreeSet::new(),
            dispatch_cursor: None,
            names: Interned::default(),
            tenants: Vec::new(),
            stored_bytes: 0,
            effects: Vec::new(),
            dispatch_dirty: false,
            #[cfg(feature = "fault-injection")]
            faults: crate::faults::Faults::default(),
        }
    }

    /// Holds a tenant for one more job; a tenant held for the first time (a new name,
    /// or a dropped id reused for another) starts with an empty load and its policy.
    pub(crate) fn hold_tenant(&mut self, name: &str) -> u32 {
        let id = self.names.tenants.acquire(name);
        let i = id as usize;
        if self.tenants.len() <= i {
            self.tenants.resize(i + 1, TenantLoad::default());
        }
        if self.names.tenants.refs(id) == 1 {
            let policy = &self.config.tenants;
            self.tenants[i] = TenantLoad {
                active: 0,
                jobs_in_flight: 0,
                cap: policy.cap(name),
                weight: policy.weight(name),
            };
        }
        id
    }
}
