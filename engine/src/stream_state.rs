//! A task's output stream as the state holds it: its kept frames, their numbering and
//! counted bytes, and the segment of the lease that appended last. `stream.rs` appends
//! to it and `stream_read.rs` reads it.

use crate::ids::Fence;
use crate::spec::Payload;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// One kept frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Frame {
    /// Its position in the task's stream, from 0.
    pub seq: u64,
    /// The attempt and lease epoch that appended it: its segment.
    pub attempt: u32,
    pub epoch: u64,
    pub data: Payload,
}

/// A task's stream, present once a frame was appended. Every field's invariant is
/// checked by `check_streams`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Stream {
    /// Kept frames, oldest first. Invariant: sequence numbers strictly ascend, below
    /// `next_seq`; as many as the mode keeps at most.
    pub frames: VecDeque<Frame>,
    /// The number the next frame gets. Invariant: kept plus dropped frames.
    pub next_seq: u64,
    /// Frames the mode let go to stay within its bound.
    pub dropped: u64,
    /// Invariant: the bytes of the kept frames.
    pub bytes: u64,
    /// The lease that appended last (its epoch) and how many frames it appended.
    /// Invariant: no frame is of a later epoch, nor is it later than the task's.
    pub segment_epoch: u64,
    pub segment_frames: u64,
}

impl Stream {
    /// The frames attempt `fence` has appended so far.
    pub(crate) fn emitted_by(&self, fence: Fence) -> u64 {
        if self.segment_epoch == fence.epoch {
            self.segment_frames
        } else {
            0
        }
    }
}

/// What one kept frame is counted as beyond its data: its numbers, the shared
/// buffer's header and the queue's slack (82 heap bytes measured by the
/// `frame_memory` example). Counted in every limit, so a flood of empty frames fills
/// them too.
pub const FRAME_OVERHEAD: u64 = 96;

/// The bytes a frame of `data` is counted as.
pub(crate) fn charge(data: &Payload) -> u64 {
    (data.len() as u64).saturating_add(FRAME_OVERHEAD)
}
