//! A streaming edge as the state holds it, on its consumer: whose stream it reads, by
//! which policy, and how far the consumer has acknowledged. `edge.rs` runs it.

use crate::edge_spec::EdgePolicy;
use crate::ids::TaskId;
use crate::stream_state::Stream;
use serde::{Deserialize, Serialize};

/// One edge into a consumer. Invariant: see `check_stream_edges`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Edge {
    /// The producing task, of the same job, listing this consumer.
    pub producer: TaskId,
    pub policy: EdgePolicy,
    /// The cursor the consumer acknowledged: it has processed every frame before it.
    /// Invariant: at most the producer's next sequence number.
    pub acked: u64,
    /// The oldest frame still owed to the consumer: a `drop_oldest` edge moves it past
    /// frames dropped to make room. Invariant: at most the producer's next sequence
    /// number.
    pub floor: u64,
    /// Frames dropped to make room on a `drop_oldest` edge before the consumer read them.
    pub dropped: u64,
}

impl Edge {
    pub(crate) fn new(producer: TaskId, policy: EdgePolicy) -> Edge {
        Edge {
            producer,
            policy,
            acked: 0,
            floor: 0,
            dropped: 0,
        }
    }

    /// Where delivery to the consumer resumes: past what it acknowledged, what was
    /// dropped for it, and every frame of the producer's earlier leases.
    pub(crate) fn resume_at(&self, producer: Option<&Stream>, epoch: u64) -> u64 {
        self.acked
            .max(self.floor)
            .max(segment_start(producer, epoch))
    }
}

/// The sequence number of the first frame lease `epoch` of a producer appended to its
/// stream `producer` (or would append next, if it has appended none): frames before it
/// are of earlier leases.
pub(crate) fn segment_start(producer: Option<&Stream>, epoch: u64) -> u64 {
    producer.map_or(0, |s: &Stream| {
        if s.segment_epoch == epoch {
            s.next_seq.saturating_sub(s.segment_frames)
        } else {
            s.next_seq
        }
    })
}
