//! What the API answers, as plain serializable rows built from the engine's views.
//! Builders that run inside [`keel_coordinator::Handle::read`] only copy what a page
//! shows; drawing (SVG) happens afterwards, off the engine task.

use crate::outputs::OutputPreview;
use crate::params::{JobFilter, StateFilter};
use keel_engine::{
    Engine, JobOutcome, JobStatus, TaskCounts, TaskStatus, TaskView, Time, WorkerView,
};
use serde::Serialize;

/// Tasks listed on a job page at most; the rest are counted.
pub(crate) const MAX_TASK_ROWS: usize = 500;
/// Attempts listed on a job page at most (newest kept).
pub(crate) const MAX_ATTEMPT_ROWS: usize = 1_000;
/// Workers listed at most.
pub(crate) const MAX_WORKER_ROWS: usize = 500;
/// Leases named per worker at most; the rest are counted.
pub(crate) const MAX_LEASES_NAMED: usize = 20;

/// The one word a job's state is shown as: its outcome once finished, else `running`
/// while any task holds a grant or lease or is suspended, `blocked` while a task waits
/// for a worker with its capabilities, `queued` otherwise.
pub(crate) fn job_state(outcome: Option<JobOutcome>, counts: &TaskCounts) -> &'static str {
    match outcome {
        Some(JobOutcome::Succeeded) => "succeeded",
        Some(JobOutcome::Failed) => "failed",
        Some(JobOutcome::Cancelled) => "cancelled",
        Some(JobOutcome::DeadlineExceeded) => "deadline_exceeded",
        None if counts.running + counts.offered + counts.suspended > 0 => "running",
        None if counts.blocked > 0 => "blocked",
        None => "queued",
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct JobRow {
    pub id: u64,
    pub name: String,
    pub tenant: String,
    pub lane: String,
    pub state: &'static str,
    pub submitted_at: Time,
    pub finished_at: Option<Time>,
    pub tasks: u32,
    pub done: u32,
    /// Non-zero task counts by state word.
    pub counts: Vec<(&'static str, u32)>,
    /// The job this one retries, from its name.
    pub retry_of: Option<u64>,
}

impl JobRow {
    pub(crate) fn new(status: &JobStatus, counts: &TaskCounts) -> JobRow {
        JobRow {
            id: status.id.get(),
            name: status.name.clone(),
            tenant: status.tenant.clone(),
            lane: status.lane.clone(),
            state: job_state(status.outcome, counts),
            submitted_at: status.submitted_at,
            finished_at: status.finished_at,
            tasks: status.tasks,
            done: status.tasks - status.remaining.min(status.tasks),
            counts: counts
                .labelled()
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect(),
            retry_of: keel_engine::retried_from(&status.name).map(|j| j.get()),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct JobList {
    pub now: Time,
    /// Jobs the engine holds, and how many of them the filters admit.
    pub total: usize,
    pub matched: usize,
    /// Newest first, at most the filter's limit.
    pub jobs: Vec<JobRow>,
    /// Every tenant and lane among held jobs, for the filter menus.
    pub tenants: Vec<String>,
    pub lanes: Vec<String>,
}

/// The jobs list, newest first. Counting tasks is linear in a job's size, so only the
/// jobs that pass the cheap filters are counted.
pub(crate) fn job_list(engine: &Engine, filter: &JobFilter, now: Time) -> JobList {
    let all = engine.jobs();
    let mut tenants: Vec<String> = all.iter().map(|j| j.tenant.clone()).collect();
    let mut lanes: Vec<String> = all.iter().map(|j| j.lane.clone()).collect();
    for names in [&mut tenants, &mut lanes] {
        names.sort();
        names.dedup();
    }
    let mut matched = 0;
    let mut jobs = Vec::new();
    for status in all.iter().rev() {
        let cheap = filter.tenant.as_ref().is_none_or(|t| *t == status.tenant)
            && filter.lane.as_ref().is_none_or(|l| *l == status.lane)
            && filter.searched(status.id, &status.name);
        if !cheap {
            continue;
        }
        let finished = status.outcome.is_some();
        let mut counts = None;
        if let Some(wanted) = filter.state {
            // A finished job's state is its outcome; only a running one needs counting.
            let state = match (finished, wanted) {
                (false, StateFilter::Exactly(_)) => {
                    let c = engine.task_counts(status.id).unwrap_or_default();
                    job_state(None, counts.insert(c))
                }
                _ => job_state(status.outcome, &TaskCounts::default()),
            };
            if !wanted.admits(state, finished) {
                continue;
            }
        }
        matched += 1;
        if jobs.len() < filter.limit {
            let counts =
                counts.unwrap_or_else(|| engine.task_counts(status.id).unwrap_or_default());
            jobs.push(JobRow::new(status, &counts));
        }
    }
    JobList {
        now,
        total: all.len(),
        matched,
        jobs,
        tenants,
        lanes,
    }
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct TaskRow {
    pub id: u64,
    pub key: String,
    pub state: &'static str,
    pub attempt: u32,
    pub failures: u32,
    pub losses: u32,
    /// Where it runs, what it waits for, or why it ended.
    pub detail: String,
    /// When a delayed task becomes ready (a delay or a retry backoff).
    pub until: Option<Time>,
    /// The latest failure reported by a worker, if any.
    pub error: Option<String>,
    /// Upstream task keys and how many must succeed ("all", "any", "2 of 3").
    pub upstream: Vec<String>,
    pub needs: Option<String>,
    /// Its output, once it has succeeded.
    pub output: Option<OutputPreview>,
}

impl TaskRow {
    pub(crate) fn new(task: &TaskView) -> TaskRow {
        let detail = match &task.status {
            TaskStatus::Running { worker, .. } => format!("on {worker}"),
            TaskStatus::Delayed { .. } => "not before".into(),
            TaskStatus::Suspended { waitpoint } => format!("waiting for {waitpoint}"),
            TaskStatus::Blocked => "no live worker has its capabilities".into(),
            TaskStatus::Parked => "held back by the job's concurrency cap".into(),
            TaskStatus::RateLimited { scope, name, .. } => {
                format!("waiting for the rate limit of {} {name:?}", scope.as_str())
            }
            TaskStatus::Done(keel_engine::TaskOutcome::Cancelled { reason }) => {
                reason.label().to_string()
            }
            _ => String::new(),
        };
        let error = match &task.status {
            TaskStatus::Done(keel_engine::TaskOutcome::Failed { error }) => Some(error.clone()),
            _ => task
                .attempts
                .iter()
                .rev()
                .filter_map(|a| a.end.as_deref()?.strip_prefix("failed: "))
                .map(str::to_string)
                .next(),
        };
        let until = match task.status {
            TaskStatus::Delayed { until } => Some(until),
            _ => None,
        };
        TaskRow {
            id: task.id.get(),
            key: task.key.clone(),
            state: task.status.label(),
            attempt: task.attempt,
            failures: task.failures,
            losses: task.losses,
            detail,
            until,
            error,
            upstream: Vec::new(),
            needs: None,
            output: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct AttemptRow {
    pub task: u64,
    pub key: String,
    pub attempt: u32,
    pub epoch: u64,
    pub worker: String,
    pub started_at: Time,
    pub ended_at: Option<Time>,
    /// "succeeded", "failed: <error>", the reason it was ended, or None while it runs.
    pub end: Option<String>,
}

/// Every attempt of `tasks`, oldest first, keeping the newest [`MAX_ATTEMPT_ROWS`].
pub(crate) fn attempt_rows(tasks: &[TaskView]) -> (Vec<AttemptRow>, usize) {
    let mut rows: Vec<AttemptRow> = tasks
        .iter()
        .flat_map(|t| {
            t.attempts.iter().map(|a| AttemptRow {
                task: t.id.get(),
                key: t.key.clone(),
                attempt: a.attempt,
                epoch: a.epoch,
                worker: a.worker.as_str().to_owned(),
                started_at: a.started_at,
                ended_at: a.ended_at,
                end: a.end.clone(),
            })
        })
        .collect();
    rows.sort_by_key(|r| (r.started_at, r.task, r.epoch));
    let total = rows.len();
    if total > MAX_ATTEMPT_ROWS {
        rows.drain(..total - MAX_ATTEMPT_ROWS);
    }
    (rows, total)
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct WorkerRow {
    pub id: String,
    pub instance: u64,
    pub status: String,
    pub lanes: Vec<String>,
    pub capabilities: Vec<String>,
    pub max_concurrency: u32,
    pub credits: u32,
    pub grants: u32,
    pub lease_count: usize,
    /// The first leases as `(job, task id, task key)`.
    pub leases: Vec<(u64, u64, String)>,
    pub blacklisted_until: Option<Time>,
    pub last_seen: Time,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct WorkerList {
    pub now: Time,
    pub total: usize,
    pub workers: Vec<WorkerRow>,
}

pub(crate) fn worker_list(engine: &Engine, now: Time) -> WorkerList {
    let all = engine.workers();
    let workers = all
        .iter()
        .take(MAX_WORKER_ROWS)
        .map(|w| worker_row(engine, w))
        .collect();
    WorkerList {
        now,
        total: all.len(),
        workers,
    }
}

fn worker_row(engine: &Engine, w: &WorkerView) -> WorkerRow {
    let leases = w
        .leases
        .iter()
        .take(MAX_LEASES_NAMED)
        .filter_map(|t| engine.describe_task(*t).ok())
        .map(|t| (t.job.get(), t.id.get(), t.key))
        .collect();
    WorkerRow {
        id: w.id.as_str().to_owned(),
        instance: w.instance.get(),
        status: w.status.clone(),
        lanes: if w.lanes.is_empty() {
            vec!["default".to_string()]
        } else {
            w.lanes.clone()
        },
        capabilities: w.capabilities.clone(),
        max_concurrency: w.max_concurrency,
        credits: w.credits,
        grants: w.grants,
        lease_count: w.leases.len(),
        leases,
        blacklisted_until: w.blacklisted_until,
        last_seen: w.last_seen,
    }
}
