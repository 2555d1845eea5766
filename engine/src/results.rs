//! Reading what tasks produced. A task's output is its winning attempt's, fixed when
//! that attempt completed under its live fence (a zombie's or a losing duplicate's
//! completion is refused before it can store anything), and kept until the job is
//! forgotten. Reads copy nothing but a reference to the bytes.

use crate::ids::{JobId, TaskId};
use crate::query::{job_status, task_status, JobStatus, TaskStatus};
use crate::reject::Rejection;
use crate::spec::Payload;
use crate::state::{Job, State, Task};
use serde::{Deserialize, Serialize};

/// One task's output as a reader sees it: none until the task has succeeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOutput {
    /// The job the task belongs to.
    pub job: JobId,
    /// The task's id.
    pub task: TaskId,
    /// Its key in the job spec, which readers name it by.
    pub key: String,
    /// Where it is now, so a reader can tell "not yet" from "never".
    pub status: TaskStatus,
    /// What its winning attempt produced; `None` until it has succeeded.
    pub output: Option<Payload>,
}

/// A job's result: the outputs of its result tasks, in task order. The result tasks
/// are those its spec names (`JobSpec::result`), else its sinks, the tasks no other
/// task of the job depends on or streams from: what a DAG ends in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    /// The job's summary, so a reader knows whether the result is final.
    pub status: JobStatus,
    /// Its result tasks' outputs.
    pub tasks: Vec<TaskOutput>,
}

fn task_output(state: &State, t: &Task) -> TaskOutput {
    TaskOutput {
        job: t.job,
        task: t.id,
        key: t.key.clone(),
        status: task_status(state, t),
        output: t.output.clone(),
    }
}

pub(crate) fn output_of(state: &State, task: TaskId) -> Result<TaskOutput, Rejection> {
    state
        .tasks
        .get(&task)
        .map(|t| task_output(state, t))
        .ok_or(Rejection::UnknownTask { task })
}

/// The task of job `job` whose key is `key`; `None` when the job has no such task.
pub(crate) fn task_by_key(
    state: &State,
    job: JobId,
    key: &str,
) -> Result<Option<TaskId>, Rejection> {
    let j = state.jobs.get(&job).ok_or(Rejection::UnknownJob { job })?;
    Ok(j.task_ids()
        .filter_map(|t| state.tasks.get(&t))
        .find(|t| t.key == key)
        .map(|t| t.id))
}

pub(crate) fn result_of(state: &State, job: JobId) -> Result<JobResult, Rejection> {
    let j = state.jobs.get(&job).ok_or(Rejection::UnknownJob { job })?;
    let tasks = result_task_ids(state, j)
        .iter()
        .filter_map(|t| state.tasks.get(t))
        .map(|t| task_output(state, t))
        .collect();
    Ok(JobResult {
        status: job_status(state, j),
        tasks,
    })
}

/// The job's result tasks in task order: those its spec names, else its sinks.
fn result_task_ids(state: &State, j: &Job) -> Vec<TaskId> {
    if j.result.is_empty() {
        let sink = |t: &TaskId| {
            state
                .tasks
                .get(t)
                .is_some_and(|t| t.downstream.is_empty() && t.consumers.is_empty())
        };
        return j.task_ids().filter(sink).collect();
    }
    j.result
        .iter()
        .map(|&offset| TaskId::nth_after(j.first_task, u64::from(offset)))
        .collect()
}
