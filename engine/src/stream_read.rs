//! Reading a task's stream by cursor. A reader asks from a sequence number and gets at
//! most a page of frames and the cursor to ask from next, so it can page through a
//! durable stream or poll a live one; it chooses every attempt's frames, the winning
//! attempt's, or one attempt's.

use crate::ids::TaskId;
use crate::output::TaskOutcome;
use crate::reject::Rejection;
use crate::spec::Payload;
use crate::state::{AttemptEnd, State, Task, TaskState};
use crate::stream_state::Frame;
use serde::{Deserialize, Serialize};

/// Whose frames a read returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Attempts {
    /// Every attempt's, each attempt's frames a segment of its own.
    #[default]
    All,
    /// Only the attempt that completed the task; none before it has. Until the task has
    /// ended the cursor does not move, so a follower gets the winner's frames once it
    /// has won.
    Winning,
    /// Only attempt `n`'s.
    Only(u32),
}

/// A read of a task's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRead {
    /// The first sequence number wanted (0 for the start, a page's `next` to go on).
    pub from: u64,
    /// At most this many frames are returned.
    pub limit: u32,
    /// Whose frames.
    pub attempts: Attempts,
}

/// One frame as a reader sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamFrame {
    /// Its position in the task's stream.
    pub seq: u64,
    /// The attempt that appended it.
    pub attempt: u32,
    /// What it holds.
    pub data: Payload,
}

/// A page of a task's stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPage {
    /// The task read.
    pub task: TaskId,
    /// The frames at or after the cursor that the read chose, oldest first.
    pub frames: Vec<StreamFrame>,
    /// The cursor to read from next: past every frame this page looked at.
    pub next: u64,
    /// The oldest frame still kept; a cursor below it finds the older ones let go.
    pub first_kept: u64,
    /// Frames the stream's mode let go so far.
    pub dropped: u64,
    /// The task has ended: no frame will be appended after `next` once it is reached.
    pub finished: bool,
}

/// Reads `task`'s stream as `read` asks.
pub(crate) fn read(state: &State, task: TaskId, read: StreamRead) -> Result<StreamPage, Rejection> {
    let t = state
        .tasks
        .get(&task)
        .ok_or(Rejection::UnknownTask { task })?;
    let finished = t.is_terminal();
    let Some(s) = t.stream.as_deref() else {
        return Ok(StreamPage {
            task,
            frames: Vec::new(),
            next: read.from,
            first_kept: 0,
            dropped: 0,
            finished,
        });
    };
    if read.attempts == Attempts::Winning && !finished {
        // The winner is known only once the task has ended: any frame looked at now may
        // turn out to be its, so the cursor stays where it is.
        return Ok(StreamPage {
            task,
            frames: Vec::new(),
            next: read.from,
            first_kept: s.frames.front().map_or(s.next_seq, |f| f.seq),
            dropped: s.dropped,
            finished,
        });
    }
    let wanted = chooser(t, read.attempts);
    let start = s.frames.partition_point(|f| f.seq < read.from);
    let (mut frames, mut next, mut full) = (Vec::new(), read.from, false);
    for f in s.frames.range(start..) {
        if frames.len() >= read.limit as usize {
            full = true;
            break;
        }
        next = f.seq.saturating_add(1);
        if wanted(f) {
            frames.push(StreamFrame {
                seq: f.seq,
                attempt: f.attempt,
                data: f.data.clone(),
            });
        }
    }
    if !full {
        // Every kept frame from the cursor on was looked at.
        next = next.max(s.next_seq);
    }
    Ok(StreamPage {
        task,
        frames,
        next,
        first_kept: s.frames.front().map_or(s.next_seq, |f| f.seq),
        dropped: s.dropped,
        finished,
    })
}

/// Which frames `attempts` chooses in `t`'s stream.
fn chooser(t: &Task, attempts: Attempts) -> impl Fn(&Frame) -> bool {
    let winner = t
        .history
        .iter()
        .rev()
        .find(|r| matches!(r.ended, Some((_, AttemptEnd::Succeeded))))
        .map(|r| r.epoch)
        .filter(|_| t.state == TaskState::Done(TaskOutcome::Succeeded));
    move |f: &Frame| match attempts {
        Attempts::All => true,
        Attempts::Winning => winner == Some(f.epoch),
        Attempts::Only(n) => f.attempt == n,
    }
}
