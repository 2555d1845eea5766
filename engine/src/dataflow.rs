//! Data between tasks: what a grant carries (the outputs of the task's upstream tasks
//! and the payload of the signal that resumed it), and the limits an output must fit
//! before it is stored. Only a committed output is ever read here: a task's output is
//! set once, by the attempt that completed under its live fence.

use crate::ids::TaskId;
use crate::output::{TaskInput, TaskOutcome};
use crate::reject::Rejection;
use crate::spec::Payload;
use crate::state::{State, Task, TaskState};

/// The inputs of `t`'s grant: one per upstream task, in the order its group names them.
pub(crate) fn inputs_of(state: &State, t: &Task) -> Vec<TaskInput> {
    t.upstream
        .iter()
        .filter_map(|u| state.tasks.get(u))
        .map(|u| TaskInput {
            key: u.key.clone(),
            output: committed(u).cloned(),
        })
        .collect()
}

/// The keys of the producers whose streams `t` reads, in its spec's order.
pub(crate) fn streams_of(state: &State, t: &Task) -> Vec<String> {
    t.edges
        .iter()
        .filter_map(|e| state.tasks.get(&e.producer))
        .map(|p| p.key.clone())
        .collect()
}

/// A task's output once it has succeeded, and never before.
fn committed(t: &Task) -> Option<&Payload> {
    match t.state {
        TaskState::Done(TaskOutcome::Succeeded) => t.output.as_ref(),
        _ => None,
    }
}

/// The payload of the signal that last resumed `t`, if a signal did.
pub(crate) fn signal_of(t: &Task) -> Option<Payload> {
    t.resumed_by
        .as_ref()
        .and_then(|key| t.signals.get(key))
        .cloned()
}

fn over(task: TaskId, limit: &str, bytes: u64, max: u64) -> Rejection {
    Rejection::OutputOverLimit {
        task,
        limit: limit.to_string(),
        bytes,
        max,
    }
}

/// Whether `t`'s output of `size` bytes fits: the per-output limit, its job's total,
/// and every downstream task's total inputs (counting the outputs its upstream tasks
/// have committed so far).
pub(crate) fn check_output(state: &State, t: &Task, size: u64) -> Result<(), Rejection> {
    let l = &state.config.limits;
    let max_output = u64::from(l.max_payload_bytes);
    if size > max_output {
        return Err(over(t.id, "max_payload_bytes", size, max_output));
    }
    let held = state.jobs.get(&t.job).map_or(0, |j| j.output_bytes);
    let job_total = held.saturating_add(size);
    if job_total > l.max_output_bytes_per_job {
        let max = l.max_output_bytes_per_job;
        return Err(over(t.id, "max_output_bytes_per_job", job_total, max));
    }
    // A downstream task's inputs are outputs of this job: when the job's total fits
    // the input limit, every downstream task's inputs do.
    if job_total <= l.max_input_bytes_per_task {
        return Ok(());
    }
    for d in t.downstream.iter().filter_map(|d| state.tasks.get(d)) {
        let inputs = d
            .upstream
            .iter()
            .filter(|u| **u != t.id)
            .filter_map(|u| state.tasks.get(u).and_then(committed))
            .fold(size, |sum, p| sum.saturating_add(p.len() as u64));
        if inputs > l.max_input_bytes_per_task {
            let max = l.max_input_bytes_per_task;
            return Err(over(t.id, "max_input_bytes_per_task", inputs, max));
        }
    }
    Ok(())
}
