//! Admission checks for a task's streaming edges: each names a known producer once, not
//! also among its finish dependencies, with a policy its producer's stream can serve.

use crate::config::Limits;
use crate::edge_spec::EdgePolicy;
use crate::reject::JobError;
use crate::spec::{JobSpec, StreamMode, TaskSpec};
use crate::validate::KeyIndex;

fn bad(t: &TaskSpec, from: &str, why: String) -> JobError {
    JobError::BadStreamEdge {
        task: t.key.clone(),
        from: from.to_string(),
        why,
    }
}

/// The indices of the producers `t` streams from, in its spec's order, given `ups`, the
/// indices of its finish dependencies. Both kinds count against `max_deps_per_task`.
pub(crate) fn producers(
    spec: &JobSpec,
    t: &TaskSpec,
    ups: &[u32],
    index: &KeyIndex,
    limits: &Limits,
) -> Result<Vec<u32>, JobError> {
    let count = (ups.len() as u64).saturating_add(t.stream_from.len() as u64);
    if count > u64::from(limits.max_deps_per_task) {
        return Err(JobError::TooManyDependencies {
            task: t.key.clone(),
            count,
            limit: limits.max_deps_per_task,
        });
    }
    let mut out: Vec<u32> = Vec::with_capacity(t.stream_from.len());
    for edge in &t.stream_from {
        let Some(p) = index.get(&edge.from) else {
            return Err(JobError::UnknownDependency {
                task: t.key.clone(),
                dep: edge.from.clone(),
            });
        };
        if out.contains(&p) || ups.contains(&p) {
            return Err(JobError::DuplicateDependency {
                task: t.key.clone(),
                dep: edge.from.clone(),
            });
        }
        if let EdgePolicy::Bounded { capacity: 0, .. } = edge.policy {
            return Err(bad(
                t,
                &edge.from,
                "a bounded edge's capacity must be at least 1".into(),
            ));
        }
        let mode = spec.tasks[p as usize].stream;
        if edge.policy.needs_every_frame() && mode != StreamMode::Durable {
            let why = format!(
                "a {} edge delivers every frame, so the producer's stream must be durable, not {}",
                edge.policy.name(),
                mode_name(mode)
            );
            return Err(bad(t, &edge.from, why));
        }
        out.push(p);
    }
    Ok(out)
}

fn mode_name(mode: StreamMode) -> String {
    match mode {
        StreamMode::Durable => "durable".into(),
        StreamMode::Bounded { frames } => format!("keep = {frames}"),
        StreamMode::Newest => "newest".into(),
    }
}
