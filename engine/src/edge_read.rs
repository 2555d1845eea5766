//! What a consumer reads of a producer's stream through its edge: frames of the
//! producer's latest lease only, from the consumer's acknowledged cursor unless it asks
//! from further on, chosen by the edge's policy, and the producer's end once every
//! frame owed has been read.

use crate::edge::edge_index;
use crate::edge_spec::EdgePolicy;
use crate::ids::TaskId;
use crate::output::TaskOutcome;
use crate::reject::Rejection;
use crate::state::{State, TaskState};
use crate::stream_read::StreamFrame;
use serde::{Deserialize, Serialize};

/// A consumer's read of one of its edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeRead {
    /// Read from this cursor (a page's `next` to go on); `None`, or a cursor below the
    /// one the consumer acknowledged, reads from the acknowledged one: a frame it
    /// acknowledged is never delivered to it again.
    pub from: Option<u64>,
    /// At most this many frames are returned.
    pub limit: u32,
}

/// A page of an edge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgePage {
    /// The producing task.
    pub producer: TaskId,
    /// The frames owed to the consumer from the cursor on, oldest first.
    pub frames: Vec<StreamFrame>,
    /// The cursor to read from next.
    pub next: u64,
    /// Frames between the cursor and `next` that the consumer will never get: of an
    /// earlier producer lease, dropped to make room (`drop_oldest`), older than the
    /// latest (`newest`) or let go by the producer's stream mode (`broadcast`).
    pub skipped: u64,
    /// The cursor the consumer has acknowledged.
    pub acked: u64,
    /// Frames dropped for this consumer by a `drop_oldest` edge so far.
    pub dropped: u64,
    /// The producer's outcome, once it has ended and every frame owed was read: the end
    /// of the stream.
    pub end: Option<TaskOutcome>,
}

/// Reads `consumer`'s edge from the task keyed `from` as `read` asks.
pub(crate) fn read(
    state: &State,
    consumer: TaskId,
    from: &str,
    read: EdgeRead,
) -> Result<EdgePage, Rejection> {
    let t = state
        .tasks
        .get(&consumer)
        .ok_or(Rejection::UnknownTask { task: consumer })?;
    let edge = &t.edges[edge_index(state, t, from)?];
    let p = state
        .tasks
        .get(&edge.producer)
        .ok_or(Rejection::UnknownTask {
            task: edge.producer,
        })?;
    let cursor = read.from.unwrap_or(edge.acked);
    let resume = edge.resume_at(p.stream.as_deref(), p.epoch);
    #[cfg(feature = "fault-injection")]
    let (cursor, resume) = if state.faults.ignore_acked_cursor {
        let segment = crate::edge_state::segment_start(p.stream.as_deref(), p.epoch);
        (read.from.unwrap_or(0), edge.floor.max(segment))
    } else {
        (cursor, resume)
    };
    let (end_seq, first_kept) = p.stream.as_deref().map_or((0, 0), |s| {
        (s.next_seq, s.frames.front().map_or(s.next_seq, |f| f.seq))
    });
    let start = cursor.max(resume).max(first_kept).min(end_seq);
    let mut frames = Vec::new();
    let mut next = start.max(cursor);
    if let Some(s) = p.stream.as_deref() {
        let from_index = s.frames.partition_point(|f| f.seq < start);
        let chosen = s.frames.range(from_index..);
        let chosen: Box<dyn Iterator<Item = _>> = match edge.policy {
            EdgePolicy::Newest => Box::new(chosen.last().into_iter()),
            _ => Box::new(chosen.take(read.limit as usize)),
        };
        for f in chosen.take(read.limit as usize) {
            next = f.seq.saturating_add(1);
            frames.push(StreamFrame {
                seq: f.seq,
                attempt: f.attempt,
                data: f.data.clone(),
            });
        }
    }
    let delivered = frames.len() as u64;
    let ended = match &p.state {
        TaskState::Done(outcome) if next >= end_seq => Some(outcome.clone()),
        _ => None,
    };
    Ok(EdgePage {
        producer: p.id,
        skipped: next.saturating_sub(cursor).saturating_sub(delivered),
        frames,
        next,
        acked: edge.acked,
        dropped: edge.dropped,
        end: ended,
    })
}
