//! Read-only views for clients and operators. Queries do not change state, so drivers
//! answer them without logging.

use crate::ids::{JobId, TaskId, Time, WorkerId};
use crate::output::{JobOutcome, TaskOutcome};
use crate::reject::Rejection;
use crate::state::{AttemptEnd, ReadyPlace, State, Task, TaskState, WorkerStatus};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    pub id: JobId,
    pub name: String,
    pub tenant: String,
    pub lane: String,
    pub submitted_at: Time,
    pub tasks: u32,
    pub remaining: u32,
    pub outcome: Option<JobOutcome>,
    pub finished_at: Option<Time>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    pub status: JobStatus,
    pub tasks: Vec<TaskView>,
}

/// Where a task is in its life, flattened for display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskStatus {
    Waiting,
    Delayed {
        until: Time,
    },
    Queued,
    /// Held back by the job's concurrency cap.
    Parked,
    /// No live worker has the capabilities it needs.
    Blocked,
    Offered,
    Running {
        worker: WorkerId,
        lease_expires_at: Time,
    },
    Suspended {
        waitpoint: String,
    },
    Done(TaskOutcome),
}

impl TaskStatus {
    /// A short word for tables and progress counts.
    pub fn label(&self) -> &'static str {
        match self {
            TaskStatus::Waiting => "waiting",
            TaskStatus::Delayed { .. } => "delayed",
            TaskStatus::Queued => "queued",
            TaskStatus::Parked => "parked",
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskView {
    pub id: TaskId,
    pub job: JobId,
    pub key: String,
    pub status: TaskStatus,
    pub attempt: u32,
    pub epoch: u64,
    pub failures: u32,
    pub losses: u32,
    pub attempts: Vec<AttemptView>,
    /// What a worker must advertise to run it, sorted.
    pub capabilities: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptView {
    pub attempt: u32,
    pub epoch: u64,
    pub worker: WorkerId,
    pub started_at: Time,
    pub ended_at: Option<Time>,
    /// "succeeded", "failed: <error>", or the reason the attempt was ended.
    pub end: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    pub id: WorkerId,
    pub instance: crate::ids::InstanceId,
    pub capabilities: Vec<String>,
    pub lanes: Vec<String>,
    pub max_concurrency: u32,
    pub status: String,
    pub grants: u32,
    pub leases: Vec<TaskId>,
    pub credits: u32,
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
    }
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

pub(crate) fn task_status(t: &Task) -> TaskStatus {
    match &t.state {
        TaskState::Waiting => TaskStatus::Waiting,
        TaskState::Delayed { until } => TaskStatus::Delayed { until: *until },
        TaskState::Ready { place } => match place {
            ReadyPlace::Queued => TaskStatus::Queued,
            ReadyPlace::Parked => TaskStatus::Parked,
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
        status: task_status(t),
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
