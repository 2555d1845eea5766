//! The DAG's edges, kept twice: each task lists its upstream tasks and its downstream
//! tasks, and the two lists must mirror each other within the job. Checked per job in
//! one pass over its upstream lists, so a wide fan-in or fan-out costs its edges once
//! instead of a search in another task's list per edge.

use crate::ids::{JobId, TaskId};
use crate::state::{Job, State, Task};
use crate::violation::Violation;

/// Every job's downstream lists are exactly the tasks naming each task upstream, in
/// task order, and every upstream task named is a task of the same job.
pub(super) fn check_edges(state: &State) -> Result<(), Violation> {
    let mut expected = Vec::new();
    for (jid, j) in &state.jobs {
        check_job(state, *jid, j, &mut expected)?;
    }
    Ok(())
}

/// `expected` is scratch space reused across jobs: per task offset, the tasks that
/// name it upstream.
fn check_job(
    state: &State,
    jid: JobId,
    j: &Job,
    expected: &mut Vec<Vec<TaskId>>,
) -> Result<(), Violation> {
    // Only the ids the task table has slots for can hold a task: a job's count read
    // from a hostile snapshot sizes nothing here.
    let span = state.tasks.span();
    let first = j.first_task.0.max(span.start);
    let end = j.first_task.0.saturating_add(u64::from(j.task_count));
    let ids = first..end.min(span.end).max(first);
    let n = (ids.end - ids.start) as usize;
    expected.iter_mut().for_each(Vec::clear);
    expected.resize_with(n.max(expected.len()), Vec::new);
    for tid in ids.clone().map(TaskId) {
        let Some(t) = state.tasks.get(&tid) else {
            continue;
        };
        for u in &t.upstream {
            let at = u.0.checked_sub(first).filter(|&at| at < n as u64);
            ensure!(
                Reference,
                at.is_some(),
                "task {tid} names upstream {u}, which is not a task of its job"
            );
            if let Some(at) = at {
                expected[at as usize].push(tid);
            }
        }
    }
    for (tid, naming) in ids.map(TaskId).zip(expected.iter()) {
        match state.tasks.get(&tid) {
            Some(t) if t.job == jid => mirrors(tid, t, naming)?,
            _ => ensure!(
                Reference,
                naming.is_empty(),
                "task {} names upstream {tid}, which is not a task of its job",
                naming[0]
            ),
        }
    }
    Ok(())
}

fn mirrors(tid: TaskId, t: &Task, naming: &[TaskId]) -> Result<(), Violation> {
    ensure!(
        Reference,
        t.downstream == naming,
        "task {tid} lists downstream [{}], but the tasks naming it upstream are [{}]",
        listed(&t.downstream),
        listed(naming)
    );
    Ok(())
}

fn listed(ids: &[TaskId]) -> String {
    let names: Vec<String> = ids.iter().map(TaskId::to_string).collect();
    names.join(", ")
}

#[cfg(test)]
#[path = "edge_invariant_tests.rs"]
mod tests;
