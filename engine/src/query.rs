//! Read-only views for clients and operators. Queries do not change state, so drivers
//! answer them without logging.

use crate::config::RateScope;
use crate::ids::{JobId, TaskId, Time, WorkerId};
use crate::output::{JobOutcome, TaskOutcome};
use crate::reject::Rejection;
use crate::state::{AttemptEnd, ReadyPlace, State, Task, TaskState, WorkerStatus};
use serde::{Deserialize, Serialize};

/// One job's summary line: enough for a job list without its tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job's id.
    pub id: JobId,
    /// The name it was submitted under (unique among live jobs).
    pub name: String,
    /// The tenant whose quota it counts against.
    pub tenant: String,
    /// The lane its tasks are queued on.
    pub lane: String,
    /// Engine time of the submission.
    pub submitted_at: Time,
    /// How many tasks the job has.
    pub tasks: u32,
    /// Tasks not yet in a final state.
    pub remaining: u32,
    /// How it ended, once it has.
    pub outcome: Option<JobOutcome>,
    /// When it ended, once it has.
    pub finished_at: Option<Time>,
    /// Limits reached by the budgets its tasks count against, in words: a soft limit
    /// as a warning, a hard one as what stopped its grants.
    pub budget_notes: Vec<String>,
}

/// A job with every task, for `keel status` and the console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    /// The job's summary.
    pub status: JobStatus,
    /// Its tasks in spec order.
    pub tasks: Vec<TaskView>,
}

/// Where a task is in its life, flattened for display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskStatus {
    /// Its dependencies have not finished.
    Waiting,
    /// Backing off before its next attempt.
    Delayed {
        /// When it becomes ready.
        until: Time,
    },
    /// Ready, waiting for a worker with credits on its lane.
    Queued,
    /// Ready, waiting for a token of a rate limit (`RatePolicy`).
    RateLimited {
        /// Whose bucket is empty: a tenant's, a lane's or a rate key's.
        scope: RateScope,
        /// The tenant, lane or key name.
        name: String,
        /// When the bucket next holds a token (others may take it first).
        until: Time,
    },
    /// Held back by the job's concurrency cap.
    Parked,
    /// Held back because a hard limit of a budget of its job or tenant was reached.
    BudgetStopped {
        /// Whose budget.
        owner: crate::budget_spec::BudgetOwner,
        /// The budget.
        budget: String,
        /// The dimension whose hard limit was reached.
        dimension: String,
    },
    /// No live worker has the capabilities it needs.
    Blocked,
    /// Offered to a worker that has not accepted yet.
    Offered,
    /// A worker holds its lease.
    Running {
        /// The lease holder.
        worker: WorkerId,
        /// When the lease lapses unless renewed.
        lease_expires_at: Time,
    },
    /// Parked until a signal arrives.
    Suspended {
        /// The name a signal must carry.
        waitpoint: String,
    },
    /// Final.
    Done(TaskOutcome),
}

impl TaskStatus {
    /// A short word for tables and progress counts.
    pub fn label(&self) -> &'static str {
        match self {
            TaskStatus::Waiting => "waiting",
            TaskStatus::Delayed { .. } => "delayed",
            TaskStatus::Queued => "queued",
            TaskStatus::RateLimited { .. } => "rate_limited",
            TaskStatus::Parked => "parked",
            TaskStatus::BudgetStopped { .. } => "budget_stopped",
            TaskStatus::Blocked => "blocked",
            TaskStatus::Offered => "offered",
            TaskStatus::Running { .. } => "running",
            TaskStatus::Suspended { .. } => "suspended",
            TaskStatus::Done(TaskOutcome::Succeeded) => "succeeded",
            TaskStatus::Done(TaskOutcome::Failed { .. }) => "failed",
            TaskStatus::Done(TaskOutcome::Skipped) => "skipped",
            TaskStatus::Done(TaskOutcome::Cancelled { .. }) => "cancelled",
        }
    }
}

/// One task as a client sees it, with its attempt history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskView {
    /// The task's id.
    pub id: TaskId,
    /// The job it belongs to.
    pub job: JobId,
    /// Its key in the job spec.
    pub key: String,
    /// Where it is now.
    pub status: TaskStatus,
    /// The current attempt number, from 1.
    pub attempt: u32,
    /// The number of leases started on it, which fences stale workers.
    pub epoch: u64,
    /// Attempts the worker reported failed, counted against the retry policy.
    pub failures: u32,
    /// Attempts lost with their worker or lease, counted against `Config::max_losses`.
    pub losses: u32,
    /// Every attempt that held a lease, oldest first.
    pub attempts: Vec<AttemptView>,
    /// What a worker must advertise to run it, sorted.
    pub capabilities: Vec<String>,
}

/// One attempt that held a lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptView {
    /// Its attempt number.
    pub attempt: u32,
    /// The epoch of its lease.
    pub epoch: u64,
    /// The worker that ran it.
    pub worker: WorkerId,
    /// When its lease started.
    pub started_at: Time,
    /// When it ended, if it has.
    pub ended_at: Option<Time>,
    /// "succeeded", "failed: <error>", or the reason the attempt was ended.
    pub end: Option<String>,
}

/// One registered worker as `keel workers` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    /// The worker's id.
    pub id: WorkerId,
    /// Its current instance.
    pub instance: crate::ids::InstanceId,
    /// What it advertises, as registered.
    pub capabilities: Vec<String>,
    /// The lanes it serves, in preference order.
    pub lanes: Vec<String>,
    /// How many tasks it runs at once (grants plus leases).
    pub max_concurrency: u32,
    /// "active", "blacklisted", "draining" or "lost".
    pub status: String,
    /// Offers it has not accepted yet.
    pub grants: u32,
    /// The tasks it holds leases on.
    pub leases: Vec<TaskId>,
    /// How many more offers it asked for.
    pub credits: u32,
    /// When it gets grants again, while blacklisted.
    pub blacklisted_until: Option<Time>,
    /// When the engine last heard from this instance.
    pub last_seen: Time,
}

pub(crate) fn job_status(state: &State, job: &crate::state::Job) -> JobStatus {
    JobStatus {
        id: job.id,
        name: job.name.clone(),
        tenant: state.names.tenants.name(job.tenant).to_string(),
        lane: state.names.lanes.name(job.lane).to_string(),
        submitted_at: job.submitted_at,
        tasks: job.task_count,
        remaining: job.remaining,
        outcome: job.end.map(|e| e.outcome),
        finished_at: job.end.map(|e| e.at),
        budget_notes: crate::budget_use::notes(state, job.id),
    }
}

pub(crate) fn status(state: &State, id: JobId) -> Result<JobStatus, Rejection> {
    let job = state
        .jobs
        .get(&id)
        .ok_or(Rejection::UnknownJob { job: id })?;
    Ok(job_status(state, job))
}

pub(crate) fn describe_job(state: &State, id: JobId) -> Result<JobView, Rejection> {
    let job = state
        .jobs
        .get(&id)
        .ok_or(Rejection::UnknownJob { job: id })?;
    let tasks = job
        .task_ids()
        .filter_map(|t| state.tasks.get(&t))
        .map(|t| task_view(state, t))
        .collect();
    Ok(JobView {
        status: job_status(state, job),
        tasks,
    })
}

pub(crate) fn describe_task(state: &State, id: TaskId) -> Result<TaskView, Rejection> {
    state
        .tasks
        .get(&id)
        .map(|t| task_view(state, t))
        .ok_or(Rejection::UnknownTask { task: id })
}

pub(crate) fn jobs(state: &State) -> Vec<JobStatus> {
    state.jobs.values().map(|j| job_status(state, j)).collect()
}

pub(crate) fn workers(state: &State) -> Vec<WorkerView> {
    state
        .workers
        .values()
        .map(|w| WorkerView {
            id: w.id.clone(),
            instance: w.instance,
            capabilities: w.capabilities.clone(),
            lanes: w.lane_names.clone(),
            max_concurrency: w.max_concurrency,
            status: match w.status {
                WorkerStatus::Active if w.blacklisted_until.is_some() => "blacklisted",
                WorkerStatus::Active => "active",
                WorkerStatus::Draining => "draining",
                WorkerStatus::Lost => "lost",
            }
            .to_string(),
            grants: w.grants.len() as u32,
            leases: w.leases.iter().copied().collect(),
            credits: w.credits,
            blacklisted_until: w.blacklisted_until,
            last_seen: w.last_seen,
        })
        .collect()
}

pub(crate) fn task_status(state: &State, t: &Task) -> TaskStatus {
    match &t.state {
        TaskState::Waiting => TaskStatus::Waiting,
        TaskState::Delayed { until } => TaskStatus::Delayed { until: *until },
        TaskState::Ready { place } => match place {
            ReadyPlace::Queued => match budget_stopped(state, t.job) {
                Some(stop) => stop,
                None => match crate::rate::throttled(state, t.queue_key()) {
                    Some(((scope, name), until)) => TaskStatus::RateLimited { scope, name, until },
                    None => TaskStatus::Queued,
                },
            },
            ReadyPlace::Parked => budget_stopped(state, t.job).unwrap_or(TaskStatus::Parked),
            ReadyPlace::Blocked => TaskStatus::Blocked,
        },
        TaskState::Offered { .. } => TaskStatus::Offered,
        TaskState::Running(l) => TaskStatus::Running {
            worker: l.worker.clone(),
            lease_expires_at: l.expires_at,
        },
        TaskState::Suspended { waitpoint, .. } => TaskStatus::Suspended {
            waitpoint: waitpoint.clone(),
        },
        TaskState::Done(o) => TaskStatus::Done(o.clone()),
    }
}

fn task_view(state: &State, t: &Task) -> TaskView {
    TaskView {
        id: t.id,
        job: t.job,
        key: t.key.clone(),
        status: task_status(state, t),
        attempt: t.attempt,
        epoch: t.epoch,
        failures: t.failures,
        losses: t.losses,
        attempts: t
            .history
            .iter()
            .map(|r| AttemptView {
                attempt: r.attempt,
                epoch: r.epoch,
                worker: r.worker.clone(),
                started_at: r.started_at,
                ended_at: r.ended.as_ref().map(|(t, _)| *t),
                end: r.ended.as_ref().map(|(_, e)| match e {
                    AttemptEnd::Succeeded => "succeeded".to_string(),
                    AttemptEnd::Failed { error, .. } => format!("failed: {error}"),
                    AttemptEnd::Ended(reason) => reason.label().to_string(),
                }),
            })
            .collect(),
        capabilities: state.names.caps(t.capset).to_vec(),
    }
}

/// The status of a job's ready task held back by a budget, if one holds it.
fn budget_stopped(state: &State, job: JobId) -> Option<TaskStatus> {
    let ((owner, budget), dimension) = crate::budget_use::stopping(state, job)?;
    Some(TaskStatus::BudgetStopped {
        owner,
        budget,
        dimension,
    })
}
