//! Estimated timing with unlimited workers: when each task could start and finish at
//! the earliest, what gates it, and how much estimated work follows it. Tasks without
//! an estimate count as taking no time. A consumer of a streaming edge starts when its
//! producers start, runs beside them, and cannot finish before they do (its stream
//! ends when theirs does).

use crate::load::LoadedJob;
use std::cmp::Reverse;

pub(crate) struct Timing {
    pub start: Vec<u64>,
    pub finish: Vec<u64>,
    /// The upstream task whose finish let this task start; `None` when the task is a
    /// root or its not-before delay ends later than its dependencies allow.
    pub gate: Vec<Option<u32>>,
    /// Estimated work on the longest downstream chain, this task included.
    pub tail: Vec<u64>,
    /// The task's stage: the longest chain of finish dependencies before it. A consumer
    /// shares the stage of the producers it streams from (or a later one), since it
    /// runs while they do.
    pub stage: Vec<u32>,
    /// Within its stage, the longest chain of producers before the task there: a
    /// consumer is scheduled after the producers it shares a stage with.
    pub within: Vec<u32>,
}

/// A group of `n` upstream tasks that needs `k` successes is satisfied, at the
/// earliest, when the k-th of them finishes. Ties between equal finishes go to the
/// smaller task id, so the result does not depend on file order.
pub(crate) fn timing(job: &LoadedJob) -> Timing {
    let (spec, valid) = (job.spec(), job.valid());
    let n = spec.tasks.len();
    let est: Vec<u64> = spec
        .tasks
        .iter()
        .map(|t| t.estimated_ms.unwrap_or(0))
        .collect();
    let mut t = Timing {
        start: vec![0; n],
        finish: vec![0; n],
        gate: vec![None; n],
        tail: vec![0; n],
        stage: vec![0; n],
        within: vec![0; n],
    };
    let mut ups: Vec<(u64, &str, u32)> = Vec::new();
    for &i in &valid.topo_order {
        let i = i as usize;
        let task = &spec.tasks[i];
        let delay = task.delay_ms;
        let mut ready = None;
        if let (Some(group), Some(upstream)) = (&task.deps, valid.upstream.get(i)) {
            let finish = |u: &u32| {
                let key = spec.tasks[*u as usize].key.as_str();
                (t.finish[*u as usize], key, *u)
            };
            let needed = group.kind.needed(upstream.len() as u32).max(1) as usize;
            // All-of and any-of need the last and the first finish; only a quorum
            // needs the k-th, found by selection rather than a full sort.
            let kth = if needed >= upstream.len() {
                upstream.iter().map(finish).max()
            } else if needed == 1 {
                upstream.iter().map(finish).min()
            } else {
                ups.clear();
                ups.extend(upstream.iter().map(finish));
                Some(*ups.select_nth_unstable(needed - 1).1)
            };
            ready = kth.map(|(finish, _, u)| (finish, u));
        }
        let (start, gate) = match ready {
            Some((finish, u)) if finish >= delay => (finish, Some(u)),
            _ => (delay, None),
        };
        let after = |ups: &[u32], by: &dyn Fn(u32) -> u32| ups.iter().map(|&u| by(u)).max();
        let staged = after(&valid.upstream[i], &|u| t.stage[u as usize] + 1);
        let streamed = after(&valid.producers[i], &|p| t.stage[p as usize]);
        t.stage[i] = staged.max(streamed).unwrap_or(0);
        let beside = valid.producers[i]
            .iter()
            .filter(|&&p| t.stage[p as usize] == t.stage[i]);
        t.within[i] = beside.map(|&p| t.within[p as usize] + 1).max().unwrap_or(0);
        streamed_timing(&mut t, i, (start, gate), est[i], &valid.producers[i]);
    }
    for &i in valid.topo_order.iter().rev() {
        let i = i as usize;
        let after = valid.downstream[i]
            .iter()
            .map(|&d| t.tail[d as usize])
            .max();
        t.tail[i] = est[i].saturating_add(after.unwrap_or(0));
    }
    t
}

/// Sets task `i`'s start, finish and gate from when its finish dependencies let it
/// start (`start`, `gate`), its estimate, and the producers it streams from: it starts
/// no earlier than any of them (their gate is then its gate), and finishes no earlier
/// than the last of them (which is then its gate: the path runs through it).
fn streamed_timing(
    t: &mut Timing,
    i: usize,
    (start, gate): (u64, Option<u32>),
    est: u64,
    producers: &[u32],
) {
    let first = producers
        .iter()
        .max_by_key(|&&p| (t.start[p as usize], Reverse(p)));
    let (start, gate) = match first {
        Some(&p) if t.start[p as usize] > start => (t.start[p as usize], t.gate[p as usize]),
        _ => (start, gate),
    };
    let last = producers
        .iter()
        .max_by_key(|&&p| (t.finish[p as usize], Reverse(p)));
    let (finish, gate) = match last {
        Some(&p) if t.finish[p as usize] >= start.saturating_add(est) => {
            (t.finish[p as usize], Some(p))
        }
        _ => (start.saturating_add(est), gate),
    };
    t.start[i] = start;
    t.finish[i] = finish;
    t.gate[i] = gate;
}

/// The chain of tasks that decides when the job finishes at the earliest: from the
/// task that finishes last (ties to the smaller id) back through its gates.
pub(crate) fn critical_path(job: &LoadedJob, t: &Timing) -> Vec<u32> {
    let tasks = &job.spec().tasks;
    let last = (0..tasks.len())
        .max_by(|&a, &b| (t.finish[a], &tasks[b].key).cmp(&(t.finish[b], &tasks[a].key)));
    let mut path = Vec::new();
    let mut cur = last.map(|i| i as u32);
    while let Some(i) = cur {
        path.push(i);
        cur = t.gate[i as usize];
    }
    path.reverse();
    path
}
