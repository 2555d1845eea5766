//! Typed failures of the log. Each names the partition and, where one is involved, the
//! record or epoch, so an operator can tell which data or which leader is at fault.

use crate::{Epoch, Offset, Partition};
use std::fmt;

/// Which stored record a corruption was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordRef {
    Entry(Offset),
    Snapshot,
    /// A partition's lease and bounds.
    Meta,
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordRef::Entry(offset) => write!(f, "entry {offset}"),
            RecordRef::Snapshot => f.write_str("snapshot"),
            RecordRef::Meta => f.write_str("metadata"),
        }
    }
}

/// What is wrong with a corrupt record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    #[error("truncated: {len} bytes")]
    Truncated { len: usize },
    #[error("checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("unknown format version {0}")]
    Version(u8),
    #[error("record says it is at offset {found}")]
    Misplaced { found: Offset },
    #[error("epoch {epoch} follows epoch {previous}")]
    EpochRegressed { epoch: Epoch, previous: Epoch },
    #[error("missing: the log ends at {end}")]
    Missing { end: Offset },
    #[error("undecodable payload: {0}")]
    Payload(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The caller's epoch is not the partition's current one: another leader was
    /// elected (or this one stepped down). Nothing was written.
    #[error("partition {partition}: epoch {epoch} is fenced; the current epoch is {current}")]
    Fenced {
        partition: Partition,
        epoch: Epoch,
        current: Epoch,
    },
    #[error("partition {partition}: leadership is held by {holder:?} until its lease expires")]
    LeaseHeld {
        partition: Partition,
        holder: String,
    },
    /// The caller's idea of the log's end is wrong; nothing was written.
    #[error(
        "partition {partition}: append expected the log to end at {expected}, it ends at {actual}"
    )]
    OffsetMismatch {
        partition: Partition,
        expected: Offset,
        actual: Offset,
    },
    #[error("partition {partition}: offset {offset} is trimmed; the log starts at {first}")]
    Trimmed {
        partition: Partition,
        offset: Offset,
        first: Offset,
    },
    #[error("partition {partition}: snapshot at {offset} is outside the log [{first}, {end}]")]
    SnapshotOutOfRange {
        partition: Partition,
        offset: Offset,
        first: Offset,
        end: Offset,
    },
    #[error("partition {partition}, {record}: {corruption}")]
    Corrupt {
        partition: Partition,
        record: RecordRef,
        corruption: Corruption,
    },
    /// A write was made durable on the primary but fewer replicas than asked for
    /// acknowledged it in time. It may still be lost by a failover.
    #[error("partition {partition}: {acked} of {wanted} replicas acknowledged the write")]
    ReplicaTimeout {
        partition: Partition,
        wanted: usize,
        acked: usize,
    },
    #[error("partition {partition}: storage failed: {message}")]
    Storage {
        partition: Partition,
        message: String,
    },
}

impl LogError {
    /// A stable name for metrics and messages.
    pub fn code(&self) -> &'static str {
        match self {
            LogError::Fenced { .. } => "fenced",
            LogError::LeaseHeld { .. } => "lease_held",
            LogError::OffsetMismatch { .. } => "offset_mismatch",
            LogError::Trimmed { .. } => "trimmed",
            LogError::SnapshotOutOfRange { .. } => "snapshot_out_of_range",
            LogError::Corrupt { .. } => "corrupt",
            LogError::ReplicaTimeout { .. } => "replica_timeout",
            LogError::Storage { .. } => "storage",
        }
    }

    /// Whether the same call may succeed later without anyone intervening.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            LogError::LeaseHeld { .. } | LogError::ReplicaTimeout { .. } | LogError::Storage { .. }
        )
    }

    pub fn storage(partition: Partition, err: impl fmt::Display) -> LogError {
        LogError::Storage {
            partition,
            message: err.to_string(),
        }
    }

    pub fn corrupt(partition: Partition, record: RecordRef, corruption: Corruption) -> LogError {
        LogError::Corrupt {
            partition,
            record,
            corruption,
        }
    }
}
