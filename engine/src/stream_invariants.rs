//! A task's stream: frames in order and counted, within the bound of its mode, each of
//! an attempt the task ran, none of a lease later than the one that appended last.

use crate::ids::TaskId;
use crate::state::Task;
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
