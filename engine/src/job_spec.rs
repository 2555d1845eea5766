//! A job's spec rebuilt from its state, for tools that submit part of a finished job
//! again (a retry of what failed). The engine keeps everything a task runs with; what
//! it does not keep is said on [`job_spec`].

use crate::ids::{JobId, TaskId};
use crate::reject::Rejection;
use crate::spec::{DepGroup, JobSpec, TaskSpec};
use crate::state::State;
use std::collections::BTreeMap;

/// The spec of a live or retained job, equivalent to the one submitted: same name,
/// tenant, lane, deadline, cap and tasks (keys, payloads, capabilities, dependency
/// groups, retry policies, timeouts, delays, priorities, `allow_failure`). Upstream
/// lists are in task order rather than as written, the job's priority is its first
/// task's (tasks that differ carry their own) and planning estimates are not kept.
pub(crate) fn job_spec(s: &State, id: JobId) -> Result<JobSpec, Rejection> {
    let job = s.jobs.get(&id).ok_or(Rejection::UnknownJob { job: id })?;
    let tasks: Vec<_> = job.task_ids().filter_map(|t| s.tasks.get(&t)).collect();
    let mut upstream: BTreeMap<TaskId, Vec<String>> = BTreeMap::new();
    for t in &tasks {
        for d in &t.downstream {
            upstream.entry(*d).or_default().push(t.key.clone());
        }
    }
    let priority = tasks.first().map_or(0, |t| t.priority);
    let specs = tasks
        .iter()
        .map(|t| TaskSpec {
            key: t.key.clone(),
            payload: t.payload.clone(),
            capabilities: s.names.caps(t.capset).to_vec(),
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
        })
        .collect();
    Ok(JobSpec {
        name: job.name.clone(),
        tenant: s.names.tenants[job.tenant as usize].clone(),
        lane: s.names.lanes[job.lane as usize].clone(),
        priority,
        deadline_ms: job
            .deadline_at
            .map(|at| at.saturating_sub(job.submitted_at).max(1)),
        max_concurrency: job.max_concurrency,
        tasks: specs,
    })
}
