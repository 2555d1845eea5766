//! Streaming edges at run time: a consumer's acknowledgements, the room a bounded edge
//! leaves its producer's emits, and the ending of consumers whose producer failed.
//! Readiness (a consumer is released once its producers have started) is `dag`'s;
//! what a consumer reads is `edge_read`'s.

use crate::dag;
use crate::edge_spec::{EdgePolicy, OnFull};
use crate::edge_state::segment_start;
use crate::ids::{Fence, InstanceId, TaskId, WorkerId};
use crate::job;
use crate::job_end;
use crate::lease;
use crate::output::{Accepted, EndReason};
use crate::reject::Rejection;
use crate::state::{State, Task};

/// The index of `t`'s edge from the task keyed `from`.
pub(crate) fn edge_index(state: &State, t: &Task, from: &str) -> Result<usize, Rejection> {
    t.edges
        .iter()
        .position(|e| state.tasks.get(&e.producer).is_some_and(|p| p.key == from))
        .ok_or_else(|| Rejection::UnknownEdge {
            task: t.id,
            from: from.to_string(),
        })
}

/// A consumer's attempt acknowledges that it has processed every frame from `from`
/// before `cursor`. Fenced: a zombie's acknowledgement changes nothing. A cursor at or
/// below the acknowledged one is a duplicate; one past the producer's frames is refused.
pub(crate) fn ack(
    state: &mut State,
    w: &WorkerId,
    inst: InstanceId,
    fence: Fence,
    from: &str,
    cursor: u64,
) -> Result<Accepted, Rejection> {
    lease::check_fence(state, w, inst, fence)?;
    let t = state
        .tasks
        .get(&fence.task)
        .ok_or(Rejection::UnknownTask { task: fence.task })?;
    let i = edge_index(state, t, from)?;
    let edge = &t.edges[i];
    let end = state
        .tasks
        .get(&edge.producer)
        .and_then(|p| p.stream.as_deref())
        .map_or(0, |s| s.next_seq);
    if cursor > end {
        return Err(Rejection::AckPastEnd {
            task: fence.task,
            from: from.to_string(),
            cursor,
            end,
        });
    }
    if cursor <= edge.acked {
        return Ok(Accepted::Acked {
            fence,
            acked: edge.acked,
            duplicate: true,
        });
    }
    if let Some(t) = state.tasks.get_mut(&fence.task) {
        t.edges[i].acked = cursor;
    }
    Ok(Accepted::Acked {
        fence,
        acked: cursor,
        duplicate: false,
    })
}

/// How much of an emit of `n` frames the producer's bounded edges let in.
pub(crate) struct Fit {
    /// How many of the frames are appended (all but what a full `block` edge holds).
    pub take: usize,
    /// `drop_oldest` edges whose floor moves to make room: (consumer, edge, the frame
    /// owed to it first until now, its new floor).
    drops: Vec<(TaskId, usize, u64, u64)>,
}

/// What the bounded edges out of `fence`'s task let an emit of `n` new frames append.
/// Refused when a `block` edge has no room at all, or when an `error` edge would
/// overflow (the attempt must fail then: the refusal comes with `true`).
fn fit(state: &State, fence: Fence, n: usize) -> Result<Fit, (Rejection, bool)> {
    let mut fit = Fit {
        take: n,
        drops: Vec::new(),
    };
    let Some(p) = state.tasks.get(&fence.task) else {
        return Ok(fit);
    };
    let end = p.stream.as_deref().map_or(0, |s| s.next_seq);
    let start = segment_start(p.stream.as_deref(), fence.epoch);
    let mut bounded = Vec::new();
    for &c in &p.consumers {
        let Some(t) = state.tasks.get(&c).filter(|t| !t.is_terminal()) else {
            continue;
        };
        for (i, e) in t.edges.iter().enumerate() {
            if let (true, EdgePolicy::Bounded { capacity, on_full }) =
                (e.producer == p.id, e.policy)
            {
                let owed_from = e.acked.max(e.floor).max(start);
                let room = u64::from(capacity).saturating_sub(end.saturating_sub(owed_from));
                bounded.push((c, i, capacity, on_full, room, owed_from));
            }
        }
    }
    let full = |c: TaskId, capacity: u32| Rejection::StreamFull {
        task: fence.task,
        consumer: c,
        capacity,
    };
    for &(c, _, capacity, on_full, room, _) in &bounded {
        if on_full == OnFull::Error && (n as u64) > room {
            return Err((full(c, capacity), true));
        }
    }
    for &(c, _, capacity, on_full, room, _) in &bounded {
        if on_full == OnFull::Block {
            fit.take = fit.take.min(usize::try_from(room).unwrap_or(usize::MAX));
            if fit.take == 0 {
                return Err((full(c, capacity), false));
            }
        }
    }
    let after = end.saturating_add(fit.take as u64);
    for &(c, i, capacity, on_full, _, owed_from) in &bounded {
        let floor = after.saturating_sub(u64::from(capacity));
        if on_full == OnFull::DropOldest && floor > owed_from {
            fit.drops.push((c, i, owed_from, floor));
        }
    }
    Ok(fit)
}

/// Moves the floors of `drop_oldest` edges as `fit` decided, once the emit is appended.
pub(crate) fn apply_drops(state: &mut State, fit: &Fit) {
    for &(c, i, owed_from, floor) in &fit.drops {
        if let Some(e) = state.tasks.get_mut(&c).and_then(|t| t.edges.get_mut(i)) {
            e.dropped = e.dropped.saturating_add(floor - owed_from);
            e.floor = floor;
        }
    }
}

/// [`fit`], failing the producer's attempt permanently, naming the edge, when an
/// `error` edge overflows.
pub(crate) fn admit(state: &mut State, fence: Fence, n: usize) -> Result<Fit, Rejection> {
    fit(state, fence, n).map_err(|(refusal, fails_attempt)| {
        if fails_attempt {
            lease::fail_attempt(state, fence.task, refusal.to_string(), true, true);
        }
        refusal
    })
}

/// Ends the consumers of producers that ended without success during this input,
/// each by its group's policy (skip when it has none): taken out of its queue, grant
/// or lease first, its worker told. A consumer that is itself a producer passes the
/// end on to its own consumers the same way.
pub(crate) fn settle(state: &mut State) {
    while let Some(c) = state.edge_ends.pop() {
        let Some(t) = state.tasks.get(&c).filter(|t| !t.is_terminal()) else {
            continue;
        };
        let outcome = dag::unsatisfied(dag::consumer_policy(t));
        if job::take_out(state, c, EndReason::DependencyUnsatisfied) {
            job_end::end_task(state, c, outcome);
        }
    }
}
