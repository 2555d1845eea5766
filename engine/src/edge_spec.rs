//! Streaming edges as a job spec declares them: a task that reads another task's output
//! stream while both run, and the policy that decides what the reader sees and what a
//! producer running ahead of it meets. `edge.rs` runs them.

use serde::{Deserialize, Serialize};

/// A dependency on another task's output stream rather than on its end: the consumer
/// becomes ready once the producer has started (and its dependency group, if any, is
/// satisfied), then reads the producer's frames while both run.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamEdge {
    /// Key of the producing task, in the same job.
    pub from: String,
    /// What the consumer sees of the producer's frames.
    pub policy: EdgePolicy,
}

/// What a consumer sees of its producer's stream. Every consumer reads at a cursor of
/// its own, which it acknowledges; a consumer's retry resumes from the last cursor it
/// acknowledged. Only the producer's current segment is delivered: once a retried
/// producer appends its first frame, the unread frames of its earlier attempts are
/// skipped, never delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EdgePolicy {
    /// Every frame, in order. The producer's stream must be durable, so nothing the
    /// consumer has not read is let go; the job's stream byte limit bounds it.
    #[default]
    Fifo,
    /// Every frame, in order, with at most `capacity` frames appended past the
    /// consumer's acknowledged cursor; `on_full` decides what an emit beyond that meets.
    Bounded {
        /// Frames the producer may run ahead of the consumer; at least 1.
        capacity: u32,
        /// What a producer's emit meets when the edge is full.
        on_full: OnFull,
    },
    /// Only the latest frame; older frames the consumer had not read are skipped and
    /// counted.
    Newest,
    /// Every frame the producer's stream mode keeps, at the consumer's own cursor,
    /// without ever holding the producer back: a consumer that falls behind a bounded
    /// stream misses the frames let go, and counts them.
    Broadcast,
}

/// What a producer's emit meets on a full bounded edge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OnFull {
    /// The emit is refused as full, appending nothing; the producer waits and sends it
    /// again, so nothing is lost.
    #[default]
    Block,
    /// The emit is appended and the consumer's cursor moves past the oldest frames to
    /// make room; the frames skipped are counted on the edge.
    DropOldest,
    /// The emit is refused and the producer's attempt fails permanently, naming the
    /// edge.
    Error,
}

impl EdgePolicy {
    /// Whether the consumer must be able to read every frame, so the producer's stream
    /// has to keep every one.
    pub fn needs_every_frame(self) -> bool {
        matches!(self, EdgePolicy::Fifo | EdgePolicy::Bounded { .. })
    }

    /// The policy's name as job files and `keel plan` spell it.
    pub fn name(self) -> &'static str {
        match self {
            EdgePolicy::Fifo => "fifo",
            EdgePolicy::Bounded { .. } => "bounded",
            EdgePolicy::Newest => "newest",
            EdgePolicy::Broadcast => "broadcast",
        }
    }
}

impl OnFull {
    /// The name as job files and `keel plan` spell it.
    pub fn name(self) -> &'static str {
        match self {
            OnFull::Block => "block",
            OnFull::DropOldest => "drop_oldest",
            OnFull::Error => "error",
        }
    }
}
