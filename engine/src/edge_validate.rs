//! Admission checks for a task's streaming edges: each names a known producer once, not
//! also among its finish dependencies, with a policy its producer's stream can serve.

use crate::config::Limits;
use crate::edge_spec::EdgePolicy;
use crate::key_index::KeyIndex;
use crate::reject::JobError;
use crate::spec::{JobSpec, StreamMode, TaskSpec};

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

/// Steps the walks of [`check_reachable`] may take for one job (about 0.1 s here): a
/// job with many consumers deep in a long chain is refused rather than checked for
/// seconds on the coordinator's one thread.
const MAX_STEPS: u64 = 20_000_000;

/// Refuses an edge whose consumer cannot start before its producer has ended (the
/// producer is a finish dependency of the consumer or of a task the consumer needs
/// started or ended): the frames could only be read after the fact, and a bounded
/// `block` edge would hold the producer back for ever. Also refuses a bounded `block` edge in a job that runs one task at a
/// time, for the same reason. Runs on an acyclic graph.
pub(crate) fn check_reachable(
    spec: &JobSpec,
    upstream: &[Vec<u32>],
    producers: &[Vec<u32>],
) -> Result<(), JobError> {
    let n = upstream.len();
    let mut walks = Walks {
        seen: vec![0; n],
        ended: vec![0; n],
        budget: MAX_STEPS,
    };
    for (c, ps) in producers.iter().enumerate() {
        if ps.is_empty() {
            continue;
        }
        let t = &spec.tasks[c];
        let stamp = c as u32 + 1;
        if walks.walk(upstream, producers, c, stamp).is_none() {
            let why = format!("checking that the job's consumers can run beside their producers takes more than {MAX_STEPS} steps; split the job");
            return Err(bad(t, &t.stream_from[0].from, why));
        }
        for (edge, &p) in t.stream_from.iter().zip(ps) {
            if walks.ended[p as usize] == stamp {
                let why = "it waits for that task to end through its deps, so it could never read the stream while it runs; name it in deps instead".to_string();
                return Err(bad(t, &edge.from, why));
            }
            let blocks = matches!(
                edge.policy,
                EdgePolicy::Bounded {
                    on_full: crate::edge_spec::OnFull::Block,
                    ..
                }
            );
            if blocks && spec.max_concurrency == Some(1) {
                let why = "a bounded block edge needs its consumer running beside its producer, and the job runs one task at a time".to_string();
                return Err(bad(t, &edge.from, why));
            }
        }
    }
    Ok(())
}

/// Marks, per task, the last walk that saw it (`seen`) and that found it must have ended
/// (`ended`): one pair of arrays serves every consumer's walk.
struct Walks {
    seen: Vec<u32>,
    ended: Vec<u32>,
    budget: u64,
}

impl Walks {
    /// Walk `stamp` (one per consumer, from 1) marks the tasks that must have ended
    /// before task `c` can start: the finish dependencies of `c` and of every task whose
    /// start or end it needs. A task needs its producers only started, and a task's own
    /// needs are the same whether it must start or end. `None` once the walks of the
    /// job took their budget.
    fn walk(
        &mut self,
        upstream: &[Vec<u32>],
        producers: &[Vec<u32>],
        c: usize,
        stamp: u32,
    ) -> Option<()> {
        self.seen[c] = stamp;
        let mut work = vec![c];
        while let Some(i) = work.pop() {
            let steps = (upstream[i].len() + producers[i].len()) as u64 + 1;
            self.budget = self.budget.checked_sub(steps)?;
            for &u in &upstream[i] {
                self.ended[u as usize] = stamp;
            }
            for &d in upstream[i].iter().chain(&producers[i]) {
                if self.seen[d as usize] != stamp {
                    self.seen[d as usize] = stamp;
                    work.push(d as usize);
                }
            }
        }
        Some(())
    }
}
