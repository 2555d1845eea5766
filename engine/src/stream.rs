//! Output streams: frames a running attempt appends to its task's stream while it runs
//! (log lines, partial results), fenced like every other command on an attempt, so a
//! zombie's frames are refused. Each frame gets the next sequence number of its task;
//! each lease starts a new segment, told apart by its fence's epoch. An emit names the
//! position of its first frame within the attempt, so a resent emit appends nothing
//! twice and a lost one leaves a gap that is refused, not silently skipped.

use crate::edge;
use crate::ids::{Fence, InstanceId, TaskId, WorkerId};
use crate::lease;
use crate::limits;
use crate::output::Accepted;
use crate::reject::Rejection;
use crate::spec::Payload;
use crate::state::{State, Task};
use crate::stream_state::{charge, Frame};

/// What appending `new` frames to `t`'s stream lets go: how many kept frames, how many
/// of the new ones (when they alone are more than the mode keeps), and their bytes.
struct Room {
    old_dropped: usize,
    new_dropped: usize,
    freed: u64,
}

fn room(t: &Task, new: &[Payload]) -> Room {
    let kept_len = t.stream.as_ref().map_or(0, |s| s.frames.len()) as u64;
    let Some(keeps) = t.stream_mode.keeps() else {
        return Room {
            old_dropped: 0,
            new_dropped: 0,
            freed: 0,
        };
    };
    let total = kept_len.saturating_add(new.len() as u64);
    let over = total.saturating_sub(keeps);
    let old_dropped = over.min(kept_len) as usize;
    let new_dropped = (over - old_dropped as u64) as usize;
    let old_bytes: u64 = t.stream.as_ref().map_or(0, |s| {
        s.frames
            .iter()
            .take(old_dropped)
            .map(|f| charge(&f.data))
            .sum()
    });
    let new_bytes: u64 = new.iter().take(new_dropped).map(charge).sum();
    Room {
        old_dropped,
        new_dropped,
        freed: old_bytes.saturating_add(new_bytes),
    }
}

fn over(task: TaskId, limit: &str, bytes: u64, max: u64) -> Rejection {
    Rejection::StreamOverLimit {
        task,
        limit: limit.to_string(),
        bytes,
        max,
    }
}

/// Appends the frames of `frames` from position `from` of attempt `fence` that its
/// task's stream does not hold yet. Refused, changing nothing: a fence that is not the
/// live lease's, a gap after the frames already appended, an emit over
/// `max_payload_bytes`, frames its job's output bytes or the store cannot hold, or a
/// full bounded edge out of the task (under `error` the attempt fails too; under
/// `block` the frames that fit are appended and only an emit none fit is refused).
pub(crate) fn emit(
    state: &mut State,
    w: &WorkerId,
    inst: InstanceId,
    fence: Fence,
    from: u64,
    frames: Vec<Payload>,
) -> Result<Accepted, Rejection> {
    lease::check_fence(state, w, inst, fence)?;
    let tid = fence.task;
    let t = state
        .tasks
        .get(&tid)
        .ok_or(Rejection::UnknownTask { task: tid })?;
    let limits = &state.config.limits;
    // The emit as a message: its data within the payload limit. Frame overheads count
    // where the frames are kept (the job's and the store's limits).
    let size = frames
        .iter()
        .fold(0u64, |n, p| n.saturating_add(p.len() as u64));
    let max_emit = u64::from(limits.max_payload_bytes);
    if size > max_emit {
        return Err(over(tid, "max_payload_bytes", size, max_emit));
    }
    let emitted = t.stream.as_ref().map_or(0, |s| s.emitted_by(fence));
    if from > emitted {
        return Err(Rejection::StreamGap {
            task: tid,
            expected: emitted,
            got: from,
        });
    }
    let skip = usize::try_from(emitted - from).unwrap_or(usize::MAX);
    #[cfg(feature = "fault-injection")]
    let skip = if state.faults.reappend_resent_frames {
        0
    } else {
        skip
    };
    let new = frames.get(skip..).unwrap_or_default();
    if new.is_empty() {
        return Ok(Accepted::Emitted {
            fence,
            next: emitted,
            dropped: 0,
            duplicate: !frames.is_empty(),
        });
    }
    store(state, fence, new)
}

/// Appends `new`, frames not appended before, as far as the task's bounded edges let
/// them in and within the job's and the store's limits.
fn store(state: &mut State, fence: Fence, new: &[Payload]) -> Result<Accepted, Rejection> {
    let tid = fence.task;
    let fit = edge::admit(state, fence, new.len())?;
    let new = &new[..fit.take];
    let t = state
        .tasks
        .get(&tid)
        .ok_or(Rejection::UnknownTask { task: tid })?;
    let new_bytes = new.iter().fold(0u64, |n, p| n.saturating_add(charge(p)));
    let room = room(t, new);
    let held = state.jobs.get(&t.job).map_or(0, |j| j.stream_bytes);
    let job_total = held.saturating_sub(room.freed).saturating_add(new_bytes);
    let max_job = state.config.limits.max_stream_bytes_per_job;
    if job_total > max_job {
        return Err(over(tid, "max_stream_bytes_per_job", job_total, max_job));
    }
    limits::admit_frames(state, new_bytes, room.freed)?;
    let next = append(state, fence, new, &room);
    edge::apply_drops(state, &fit);
    let dropped = (room.old_dropped + room.new_dropped) as u64;
    Ok(Accepted::Emitted {
        fence,
        next,
        dropped,
        duplicate: false,
    })
}

/// Stores the new frames the checks let in, letting go of what the mode drops; returns
/// the frames the attempt has appended in all.
fn append(state: &mut State, fence: Fence, new: &[Payload], room: &Room) -> u64 {
    let Some(t) = state.tasks.get_mut(&fence.task) else {
        return 0;
    };
    let job = t.job;
    let s = t.stream.get_or_insert_with(Box::default);
    let before = s.bytes;
    for f in s.frames.drain(..room.old_dropped) {
        s.bytes = s.bytes.saturating_sub(charge(&f.data));
    }
    let emitted = s.emitted_by(fence);
    s.segment_epoch = fence.epoch;
    s.segment_frames = emitted.saturating_add(new.len() as u64);
    s.dropped = s.dropped.saturating_add(room.new_dropped as u64);
    s.dropped = s.dropped.saturating_add(room.old_dropped as u64);
    s.next_seq = s.next_seq.saturating_add(room.new_dropped as u64);
    for data in &new[room.new_dropped..] {
        s.bytes = s.bytes.saturating_add(charge(data));
        s.frames.push_back(Frame {
            seq: s.next_seq,
            attempt: fence.attempt,
            epoch: fence.epoch,
            data: data.clone(),
        });
        s.next_seq = s.next_seq.saturating_add(1);
    }
    let (after, total) = (s.bytes, s.segment_frames);
    limits::unstore(state, before);
    limits::store(state, after);
    if let Some(j) = state.jobs.get_mut(&job) {
        j.stream_bytes = j.stream_bytes.saturating_sub(before).saturating_add(after);
    }
    total
}
