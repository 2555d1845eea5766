//! The engine's whole state. Everything here is serialized into snapshots and hashed
//! into the digest, so it holds only ordered collections and plain data.

use crate::config::{Config, RateScope};
use crate::ids::{GrantId, InstanceId, JobId, TaskId, Time, WorkerId};
use crate::input::SuspendTimeout;
use crate::intern::{CapSetId, Interned};
use crate::output::{Effect, EndReason, JobOutcome, TaskOutcome};
use crate::ready::{QueueKey, ReadyIndex, ReadyKey};
use crate::slab::Slab;
use crate::spec::{GroupKind, Payload, RetryPolicy, UnsatisfiedPolicy};
use crate::timers::Timers;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) use crate::state_workers::{Grant, Worker, WorkerStatus};

/// Every field's invariant is checked from scratch by `invariants::check` after each
/// step in tests and on every `restore`; the `Invariant:` lines say what it checks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct State {
    /// Invariant: passes `Config::validate` (checked on restore).
    pub config: Config,
    /// The latest `now` applied; never moves back.
    pub now: Time,
    /// The id the next job gets. Invariant: at most `ID_CEILING`.
    pub next_job: u64,
    /// The id the next job's first task gets. Invariant: a non-empty task table ends
    /// exactly here, every job's tasks lie below it, and it is at most `ID_CEILING`.
    pub next_task: u64,
    /// The id the next grant gets. Invariant: at most `ID_CEILING`.
    pub next_grant: u64,
    /// Live and retained jobs. Invariant: each is stored under its own id; their number
    /// stays within `Limits::max_live_jobs`.
    pub jobs: BTreeMap<JobId, Job>,
    /// Invariant: each name maps to a held job of that name, and every live (unended)
    /// job is the one its name stands for.
    pub job_names: BTreeMap<String, JobId>,
    /// Invariant: each task is stored under its own id and belongs to a held job whose
    /// id range, tenant and lane it matches; the count is the number of occupied slots.
    pub tasks: Slab<Task>,
    /// Invariant: each worker is stored under its own id.
    pub workers: BTreeMap<WorkerId, Worker>,
    /// Invariant: every grant is held by the task it names, as its pending offer
    /// (`Offered`) or as its lease's grant (`Running`).
    pub grants: BTreeMap<GrantId, Grant>,
    /// Invariant: holds exactly the `Ready { Queued }` tasks, each under its own
    /// (lane, tenant, capability set) queue and ready key.
    pub ready: ReadyIndex,
    /// Invariant: every deadline the state records (delays, grant and lease expiry,
    /// attempt and suspension timeouts, job deadlines and retention, blacklists) has its
    /// timer armed at that time.
    pub timers: Timers,
    /// Workers that asked for work and still have credits.
    /// Invariant: each is a known worker with `credits > 0`.
    pub demand: BTreeSet<WorkerId>,
    /// Where the next dispatch round starts, so no worker is always served first.
    pub dispatch_cursor: Option<WorkerId>,
    /// Interned tenant, lane and capability-set names. Invariant: every id a task, job,
    /// queue or worker uses exists, and each name's reference count equals its holders.
    pub names: Interned,
    /// Per interned tenant id: tasks holding a grant or lease, and jobs in flight.
    /// Invariant: one entry per tenant slot; see `TenantLoad`.
    pub tenants: Vec<TenantLoad>,
    /// Bytes of payloads, signal payloads and outputs held by tasks; see
    /// `Limits::max_stored_bytes`. Invariant: equals the bytes the tasks hold.
    pub stored_bytes: u64,
    /// Token buckets drawn from, by scope and name; see `rate`. Invariant: each is
    /// configured, within its capacity, and no later than `now`.
    pub buckets: BTreeMap<BucketKey, Bucket>,
    /// When the rate-refill timer dispatch waits for is armed, if it is.
    pub rate_wake: Option<Time>,
    /// Recurring jobs by name; see `schedule`. Invariant: see `check_schedules`.
    pub schedules: BTreeMap<String, Schedule>,
    /// The schedule each unended run belongs to. Invariant: exactly the schedules'
    /// `active` runs.
    pub schedule_runs: BTreeMap<JobId, String>,
    /// Usage of the budgets something was counted against; see `budgets`. A budget
    /// with no entry has counted nothing. Invariant: see `check_budgets`.
    pub budgets: BTreeMap<BudgetKey, BudgetUse>,
    /// Effects produced by the input being applied; drained by `apply`.
    #[serde(skip)]
    pub effects: Vec<Effect>,
    /// Something changed that may let any waiting worker receive a grant.
    #[serde(skip)]
    pub dispatch_dirty: bool,
    /// Workers whose own change (credits asked for, readmission) may let them receive a
    /// grant. A dispatch ends only once no waiting worker can take a ready task, and a
    /// grant only takes from what the others could be offered, so while nothing else
    /// changed these are the only workers worth asking.
    #[serde(skip)]
    pub dispatch_workers: Vec<WorkerId>,
    /// Consumers, already released, of producers that ended without success in the
    /// input being applied; `edge::settle` ends them before `apply` returns.
    #[serde(skip)]
    pub edge_ends: Vec<TaskId>,
    #[cfg(feature = "fault-injection")]
    #[serde(skip)]
    pub faults: crate::faults::Faults,
}

/// A stored schedule. Every field's invariant is checked by `check_schedules`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Schedule {
    pub spec: crate::schedule_spec::ScheduleSpec,
    /// Hash of the spec, to tell a resent `Add` from a conflicting one.
    pub spec_hash: u64,
    /// Interval schedules count their periods from here.
    pub created_at: Time,
    /// Invariant: the `ScheduleDue` timer is armed exactly here; `None` while paused
    /// or when the trigger has no due time left.
    pub next_due: Option<Time>,
    /// The first missed due time, while its catch-up waits at `next_due`.
    pub late_from: Option<Time>,
    pub paused: bool,
    /// Runs submitted and not yet ended. Invariant: each is a held, unended job that
    /// `State::schedule_runs` maps to this schedule.
    pub active: BTreeSet<JobId>,
    /// A due time waiting for the active run to end (`Overlap::QueueOne`).
    pub queued: Option<Time>,
    /// Invariant: the `ScheduleRelease` timer is armed exactly here.
    pub release_at: Option<Time>,
    /// The latest due time handled (run, skipped or missed).
    pub last_due: Option<Time>,
    pub fired: u64,
    pub skipped: u64,
    pub missed: u64,
    pub failed: u64,
    /// Why the latest refused run was refused.
    pub last_error: Option<String>,
}

/// A budget's identity: whose it is and its name.
pub(crate) type BudgetKey = (crate::budget_spec::BudgetOwner, String);

/// What one budget has counted. Every field's invariant is checked by `check_budgets`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BudgetUse {
    /// Per limited dimension, the amount counted (saturating).
    pub used: BTreeMap<String, u64>,
    /// Dimensions whose soft limit has been reached (each warned about once).
    pub warned: BTreeSet<String>,
    /// The first dimension whose hard limit was reached. Invariant: set exactly when
    /// some dimension's use is at or past its hard limit.
    pub exhausted: Option<String>,
    /// Dedup keys of the usage reports counted. Invariant: at most
    /// `MAX_USAGE_REPORTS`.
    pub reports: BTreeSet<String>,
    /// When a tenant budget's period ends. Invariant: the `BudgetReset` timer is armed
    /// exactly here, and it is set exactly for budgets that reset.
    pub resets_at: Option<Time>,
}

/// A job stopped by a hard limit of one of its budgets or its tenant's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BudgetStop {
    pub budget: BudgetKey,
    pub dimension: String,
    /// Invariant: when set, the `BudgetEnd` timer is armed exactly here.
    pub end_at: Option<Time>,
}

/// A drawn-from token bucket (see `rate`): its level at `at`, and the period its units are counted in
/// (so a configuration that changes the period rescales the level).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Bucket {
    pub level: u64,
    pub at: Time,
    pub per_ms: u32,
}

/// A bucket's identity: its scope and the tenant, lane or key name.
pub(crate) type BucketKey = (RateScope, String);

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub(crate) struct TenantLoad {
    /// Invariant: the tenant's tasks that are `Offered` or `Running`, at most `cap`
    /// plus `over_cap`.
    pub active: u32,
    /// Invariant: the tenant's jobs without an end.
    pub jobs_in_flight: u32,
    /// Copied from the tenant policy when the tenant is first seen, and when a new
    /// configuration is applied.
    pub cap: Option<u32>,
    /// Tasks a lowered cap found active beyond it: they finish, and no grant is made
    /// for the tenant until it is under its cap. Invariant: at most `active - cap`.
    pub over_cap: u32,
    /// Share of dispatch among tenants. Invariant: not 0.
    pub weight: u32,
    /// A budget of the tenant is exhausted: none of its tasks is granted. Invariant:
    /// set exactly when one of its budget entries is.
    pub budget_stopped: bool,
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
    /// Offsets from `first_task` of the tasks the spec names as the job's result.
    /// Invariant: ascending, each below `task_count`. Empty when the spec names none
    /// and the result is the sink tasks (kept empty then, so the common job pays
    /// nothing for it).
    pub result: Vec<u32>,
    pub submitted_at: Time,
    /// Invariant: while the job is live, its deadline timer is armed here.
    pub deadline_at: Option<Time>,
    /// Tasks not yet terminal. Invariant: the job's tasks not `Done`.
    pub remaining: u32,
    /// Tasks holding a grant or a lease. Invariant: the job's `Offered` and `Running`
    /// tasks, at most `max_concurrency`.
    pub active: u32,
    /// Ready tasks in the ready index. Invariant: the job's `Ready { Queued }` tasks.
    pub queued: u32,
    /// Ready tasks held back because the job is at its concurrency cap.
    /// Invariant: exactly the ready keys of the job's `Ready { Parked }` tasks.
    pub parked: BTreeSet<ReadyKey>,
    /// Tasks whose failure or cancellation fails the job.
    pub failed: u32,
    /// Bytes of its tasks' outputs. Invariant: their sum, within
    /// `Limits::max_output_bytes_per_job`.
    pub output_bytes: u64,
    /// Bytes of its tasks' kept stream frames, as counted by `stream_state::charge`.
    /// Invariant: their sum, within `Limits::max_stream_bytes_per_job`.
    pub stream_bytes: u64,
    /// The job's own budgets, as its spec declared them.
    pub budgets: BTreeMap<String, crate::budget_spec::BudgetSpec>,
    /// Set when a job budget's hard limit is reached: the job gets no grants and ends.
    pub budget_stop: Option<BudgetStop>,
    /// Set when the job is being ended from outside (cancel, deadline).
    pub forced: Option<(JobOutcome, EndReason)>,
    /// Invariant: set exactly when `remaining` is 0; then the retention timer is armed.
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
        self.budget_stop.is_some()
            || self
                .max_concurrency
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
    /// Interned rate key (`TaskSpec::rate_key`).
    pub rate: Option<u32>,
    pub priority: i32,
    pub retry: RetryPolicy,
    pub attempt_timeout_ms: Option<u64>,
    pub not_before: Time,
    pub allow_failure: bool,
    /// Invariant: `needed` and the succeeded and unsucceeded counts together are at
    /// most `total`.
    pub group: Option<Group>,
    /// The tasks its group names, in the group's order: whose outputs its grants carry.
    /// Invariant: as many as the group counts, each a task of the same job listing this
    /// one downstream.
    pub upstream: Vec<TaskId>,
    pub downstream: Vec<TaskId>,
    /// Invariant: see `TaskState`; every place it names (grant, lease, ready index,
    /// parked set, blocked set, timer) holds the task back.
    pub state: TaskState,
    /// Current attempt number, from 1; a new attempt starts after a failure or a loss.
    pub attempt: u32,
    /// Increases every time a lease on this task starts. Invariant: equals the last
    /// attempt record's epoch (0 with none), at most `ID_CEILING`.
    pub epoch: u64,
    pub failures: u32,
    pub losses: u32,
    /// Invariant: epochs strictly increase; only the last record may be open, and it is
    /// open exactly while the task is `Running`.
    pub history: Vec<AttemptRecord>,
    /// Signals received, by idempotency key. Invariant: a finished task holds none of
    /// their payloads.
    pub signals: BTreeMap<String, Payload>,
    /// The idempotency key of the signal that last resumed the task, whose payload its
    /// later grants carry; `None` before any resume and after a resume by timeout.
    /// Invariant: a key of `signals`.
    pub resumed_by: Option<String>,
    pub output: Option<Payload>,
    pub stream_mode: crate::spec::StreamMode,
    /// Frames its attempts emitted; `None` until the first, so a task that streams
    /// nothing pays a word for it. Invariant: see `check_streams`.
    pub stream: Option<Box<crate::stream_state::Stream>>,
    /// The streams it reads, in its spec's order. Invariant: see `check_stream_edges`.
    pub edges: Vec<crate::edge_state::Edge>,
    /// The tasks reading its stream, ascending. Invariant: exactly the tasks of its job
    /// with an edge from it.
    pub consumers: Vec<TaskId>,
}

impl Task {
    /// The ready-index queue the task waits in when queued.
    pub(crate) fn queue_key(&self) -> QueueKey {
        QueueKey {
            lane: self.lane,
            tenant: self.tenant,
            capset: self.capset,
            rate: self.rate,
        }
    }

    pub(crate) fn ready_key(&self) -> ReadyKey {
        ReadyKey {
            rank: -(self.priority as i64),
            task: self.id,
        }
    }

    pub(crate) fn is_terminal(&self) -> bool {
        matches!(self.state, TaskState::Done(_))
    }

    /// Bytes its stream holds, frame overheads included.
    pub(crate) fn stream_bytes(&self) -> u64 {
        self.stream.as_ref().map_or(0, |s| s.bytes)
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
    /// Invariant: a grant accepted at the task's current epoch.
    pub grant: GrantId,
    /// Invariant: a live worker listing this lease and covering the task's capabilities.
    pub worker: WorkerId,
    /// Invariant: the worker's current instance.
    pub instance: InstanceId,
    pub started_at: Time,
    /// Invariant: after `now` (or the end of time), and not before `timer_at`.
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
            buckets: BTreeMap::new(),
            rate_wake: None,
            schedules: BTreeMap::new(),
            schedule_runs: BTreeMap::new(),
            budgets: BTreeMap::new(),
            effects: Vec::new(),
            dispatch_dirty: false,
            dispatch_workers: Vec::new(),
            edge_ends: Vec::new(),
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
                over_cap: 0,
                budget_stopped: self.tenant_exhausted(name),
            };
        }
        id
    }

    /// Whether any budget of the tenant is exhausted.
    pub(crate) fn tenant_exhausted(&self, tenant: &str) -> bool {
        let owner = crate::budget_spec::BudgetOwner::Tenant(tenant.to_string());
        self.budgets
            .range((owner.clone(), String::new())..)
            .take_while(|((o, _), _)| *o == owner)
            .any(|(_, u)| u.exhausted.is_some())
    }
}
