//! A task's stream: frames in order and counted, within the bound of its mode, each of
//! an attempt the task ran, none of a lease later than the one that appended last; and
//! its streaming edges, consistent from both ends.

use crate::ids::TaskId;
use crate::state::{State, Task, TaskState};
use crate::violation::Violation;

pub(super) fn check_stream(tid: TaskId, t: &Task) -> Result<(), Violation> {
    let Some(s) = t.stream.as_deref() else {
        return Ok(());
    };
    let kept = s.frames.len() as u64;
    ensure!(
        Stream,
        kept.checked_add(s.dropped) == Some(s.next_seq),
        "task {tid} stream keeps {kept} frames and dropped {}, but numbered {}",
        s.dropped,
        s.next_seq
    );
    if let Some(keeps) = t.stream_mode.keeps() {
        ensure!(
            Stream,
            kept <= keeps,
            "task {tid} stream keeps {kept} frames, its mode at most {keeps}"
        );
    }
    ensure!(
        Stream,
        s.segment_epoch <= t.epoch && s.segment_frames <= s.next_seq,
        "task {tid} stream's last segment (epoch {}, {} frames) is past the task (epoch {}) or its frames",
        s.segment_epoch,
        s.segment_frames,
        t.epoch
    );
    // Frames are appended in lease order and history epochs strictly increase, so one
    // pass over both finds each frame's attempt.
    let (mut bytes, mut below) = (0u64, 0u64);
    let mut history = t.history.iter().peekable();
    for f in &s.frames {
        ensure!(
            Stream,
            f.seq >= below && f.seq < s.next_seq,
            "task {tid} stream frame {} is out of order or not below {}",
            f.seq,
            s.next_seq
        );
        below = f.seq.saturating_add(1);
        while history.next_if(|r| r.epoch < f.epoch).is_some() {}
        let ran = history
            .peek()
            .is_some_and(|r| r.epoch == f.epoch && r.attempt == f.attempt);
        ensure!(
            Stream,
            ran && f.epoch <= s.segment_epoch,
            "task {tid} stream frame {} is of attempt {} epoch {}, out of lease order, not run by the task, or past the last segment",
            f.seq,
            f.attempt,
            f.epoch
        );
        bytes = bytes.saturating_add(crate::stream_state::charge(&f.data));
    }
    ensure!(
        Stream,
        bytes == s.bytes,
        "task {tid} stream counts {} bytes, its frames take {bytes}",
        s.bytes
    );
    Ok(())
}

/// A task's streaming edges, both ways: each edge's producer is a task of the same job
/// listing the consumer, each listed consumer has an edge from it, acknowledged cursors
/// and floors are within the producer's frames, and a consumer released to run has
/// producers that have all started.
pub(super) fn check_stream_edges(state: &State, tid: TaskId, t: &Task) -> Result<(), Violation> {
    for e in &t.edges {
        let p = state.tasks.get(&e.producer);
        ensure!(
            Reference,
            p.is_some_and(|p| p.job == t.job && p.consumers.binary_search(&tid).is_ok()),
            "task {tid} streams from {}, which is not a task of its job listing it",
            e.producer
        );
        let p = p.expect("checked above");
        let end = p.stream.as_deref().map_or(0, |s| s.next_seq);
        ensure!(
            Stream,
            e.acked <= end && e.floor <= end,
            "task {tid}'s edge from {} is acknowledged to {} with floor {}, past its {end} frames",
            e.producer,
            e.acked,
            e.floor
        );
        let released = !matches!(t.state, TaskState::Waiting | TaskState::Done(_));
        ensure!(
            History,
            !released || p.epoch > 0,
            "task {tid} was released before its producer {} started",
            e.producer
        );
    }
    ensure!(
        Reference,
        t.consumers.windows(2).all(|w| w[0] < w[1]),
        "task {tid}'s consumers are not ascending"
    );
    for c in &t.consumers {
        ensure!(
            Reference,
            state
                .tasks
                .get(c)
                .is_some_and(|c| c.edges.iter().any(|e| e.producer == tid)),
            "task {tid} lists consumer {c}, which has no edge from it"
        );
    }
    Ok(())
}
