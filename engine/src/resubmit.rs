//! Dead-letter replay: the spec a job was admitted with, rebuilt from the engine's own
//! state, and the part of a finished job that did not succeed, as a new job to submit.
//! Rebuilding from state keeps no second copy of every spec and cannot disagree with
//! what the engine ran.

use crate::ids::{JobId, TaskId};
use crate::output::TaskOutcome;
use crate::reject::Rejection;
use crate::spec::{DepGroup, GroupKind, JobSpec, TaskSpec};
use crate::state::{State, TaskState};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// Why the unsucceeded part of a job cannot be submitted again.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RetryRefusal {
    /// The engine holds no such job, so it has nothing to rebuild the spec from.
    #[error("unknown job {job} (never submitted, or finished and forgotten)")]
    UnknownJob {
        /// The job asked for.
        job: JobId,
    },
    /// A running job could still succeed; retrying it now would run tasks twice.
    #[error("job {job} has not finished; cancel it or wait for it to end")]
    NotFinished {
        /// The job asked for.
        job: JobId,
    },
    /// The job succeeded as a whole.
    #[error("every task of job {job} succeeded; there is nothing to retry")]
    NothingToRetry {
        /// The job asked for.
        job: JobId,
    },
}

impl RetryRefusal {
    /// A stable snake_case code for wire protocols and logs.
    pub fn code(&self) -> &'static str {
        match self {
            RetryRefusal::UnknownJob { .. } => "unknown_job",
            RetryRefusal::NotFinished { .. } => "not_finished",
            RetryRefusal::NothingToRetry { .. } => "nothing_to_retry",
        }
    }
}

const RETRY_MARK: &str = "[retry of job ";

/// The name of the job that retries job `of` named `name`: the name without any earlier
/// retry mark, then ` [retry of job N]`, cut to `max_len` bytes on a character
/// boundary. The same old job always gives the same name, so retrying it twice while
/// the first retry lives finds that job again instead of running the tasks twice.
pub fn retry_name(name: &str, of: JobId, max_len: u32) -> String {
    let base = match retried_from(name) {
        Some(_) => name[..name.rfind(RETRY_MARK).unwrap_or(0)].trim_end(),
        None => name,
    };
    let mark = format!("{RETRY_MARK}{}]", of.0);
    let max = max_len as usize;
    let room = max.saturating_sub(mark.len() + 1);
    let base = cut(base, room);
    let name = if base.is_empty() {
        mark
    } else {
        format!("{base} {mark}")
    };
    cut(&name, max).to_string()
}

/// The job a retry job was made from, read back from the mark [`retry_name`] puts at
/// the end of its name.
pub fn retried_from(name: &str) -> Option<JobId> {
    let (_, digits) = name.strip_suffix(']')?.rsplit_once(RETRY_MARK)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(JobId)
}

/// `text` cut to at most `max` bytes, at a character boundary: one of the three bytes
/// below the cut is one, as a character is at most four bytes.
fn cut(text: &str, max: usize) -> &str {
    let end = text.len().min(max);
    let end = (end.saturating_sub(3)..=end)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    &text[..end]
}

/// The streaming edges of `t` as its spec named them.
fn stream_edges(
    t: &crate::state::Task,
    key_of: &BTreeMap<TaskId, &str>,
) -> Vec<crate::edge_spec::StreamEdge> {
    let key = |p: &TaskId| key_of.get(p).copied().unwrap_or_default().to_string();
    t.edges
        .iter()
        .map(|e| crate::edge_spec::StreamEdge {
            from: key(&e.producer),
            policy: e.policy,
        })
        .collect()
}

/// The spec job `id` was admitted with: same name, tenant, lane, deadline, cap and
/// tasks (keys, payloads, capabilities, dependency groups, retry policies, timeouts,
/// delays, priorities, `allow_failure`) and named result tasks. Capabilities come back
/// sorted, upstream lists and result tasks in task order, the job's priority is its first task's (tasks that differ carry
/// their own), and the planner-only `estimated_ms` is not kept.
pub(crate) fn job_spec(state: &State, id: JobId) -> Result<JobSpec, Rejection> {
    let job = state
        .jobs
        .get(&id)
        .ok_or(Rejection::UnknownJob { job: id })?;
    let tasks: Vec<_> = job.task_ids().filter_map(|t| state.tasks.get(&t)).collect();
    let key_of: BTreeMap<TaskId, &str> = tasks.iter().map(|t| (t.id, t.key.as_str())).collect();
    let mut upstream: BTreeMap<TaskId, Vec<String>> = BTreeMap::new();
    for t in &tasks {
        for d in &t.downstream {
            if key_of.contains_key(d) {
                upstream.entry(*d).or_default().push(t.key.clone());
            }
        }
    }
    let priority = tasks.first().map_or(0, |t| t.priority);
    let specs = tasks
        .iter()
        .map(|t| TaskSpec {
            key: t.key.clone(),
            payload: t.payload.clone(),
            capabilities: state
                .names
                .capsets
                .get(t.capset.0 as usize)
                .map(|c| c.caps.clone())
                .unwrap_or_default(),
            deps: t.group.map(|g| DepGroup {
                kind: g.kind,
                upstream: upstream.remove(&t.id).unwrap_or_default(),
                on_unsatisfied: g.on_unsatisfied,
            }),
            retry: t.retry,
            attempt_timeout_ms: t.attempt_timeout_ms,
            delay_ms: t.not_before.saturating_sub(job.submitted_at),
            priority: (t.priority != priority).then_some(t.priority),
            allow_failure: t.allow_failure,
            estimated_ms: None,
            rate_key: t.rate.map(|r| state.names.rates.name(r).to_string()),
            stream: t.stream_mode,
            stream_from: stream_edges(t, &key_of),
        })
        .collect();
    Ok(JobSpec {
        name: job.name.clone(),
        tenant: state.names.tenants.name(job.tenant).to_string(),
        lane: state.names.lanes.name(job.lane).to_string(),
        priority,
        deadline_ms: job
            .deadline_at
            .map(|at| at.saturating_sub(job.submitted_at).max(1)),
        max_concurrency: job.max_concurrency,
        result: job
            .result
            .iter()
            .filter_map(|&offset| {
                state
                    .tasks
                    .get(&TaskId::nth_after(job.first_task, u64::from(offset)))
            })
            .map(|t| t.key.clone())
            .collect(),
        tasks: specs,
        budgets: job.budgets.clone(),
    })
}

/// The spec that runs again what finished job `id` did not succeed at, named by
/// [`retry_name`].
pub(crate) fn retry_spec(state: &State, id: JobId) -> Result<JobSpec, RetryRefusal> {
    let job = state
        .jobs
        .get(&id)
        .ok_or(RetryRefusal::UnknownJob { job: id })?;
    if job.end.is_none() {
        return Err(RetryRefusal::NotFinished { job: id });
    }
    let succeeded: BTreeSet<String> = job
        .task_ids()
        .filter_map(|t| state.tasks.get(&t))
        .filter(|t| matches!(t.state, TaskState::Done(TaskOutcome::Succeeded)))
        .map(|t| t.key.clone())
        .collect();
    let spec = job_spec(state, id).map_err(|_| RetryRefusal::UnknownJob { job: id })?;
    let name = retry_name(&spec.name, id, state.config.limits.max_name_len);
    unsucceeded_part(spec, &succeeded, name).ok_or(RetryRefusal::NothingToRetry { job: id })
}

/// The tasks of `spec` not in `succeeded`, renamed `name`. A kept task's dependency
/// group keeps only kept upstream tasks and needs as many fewer successes as already
/// succeeded upstream; a group already satisfied is dropped, so the task is ready at
/// once. None when every task succeeded.
pub(crate) fn unsucceeded_part(
    spec: JobSpec,
    succeeded: &BTreeSet<String>,
    name: String,
) -> Option<JobSpec> {
    let tasks: Vec<TaskSpec> = spec
        .tasks
        .into_iter()
        .filter(|t| !succeeded.contains(&t.key))
        .map(|mut t| {
            t.deps = t.deps.and_then(|group| shrink(group, succeeded));
            t
        })
        .collect();
    if tasks.is_empty() {
        return None;
    }
    // Result tasks that already succeeded are not in the retry; when none is left, the
    // retry's result is its own sinks.
    let result = spec
        .result
        .into_iter()
        .filter(|key| !succeeded.contains(key))
        .collect();
    Some(JobSpec {
        name,
        tasks,
        result,
        ..spec
    })
}

fn shrink(group: DepGroup, succeeded: &BTreeSet<String>) -> Option<DepGroup> {
    let total = group.upstream.len() as u32;
    let done = group
        .upstream
        .iter()
        .filter(|u| succeeded.contains(*u))
        .count() as u32;
    let needed = group.kind.needed(total).saturating_sub(done);
    let upstream: Vec<String> = group
        .upstream
        .into_iter()
        .filter(|u| !succeeded.contains(u))
        .collect();
    let left = upstream.len() as u32;
    if needed == 0 || left == 0 {
        return None;
    }
    let kind = if needed >= left {
        GroupKind::AllOf
    } else if needed == 1 {
        GroupKind::AnyOf
    } else {
        GroupKind::Quorum(needed)
    };
    Some(DepGroup {
        kind,
        upstream,
        on_unsatisfied: group.on_unsatisfied,
    })
}

#[cfg(test)]
#[path = "resubmit_tests.rs"]
mod tests;
