//! Typed failures of the log. Each names the partition and, where one is involved, the
//! record, epoch or store, so an operator can tell which data or which leader is at
//! fault, and each answers two questions a caller must ask before acting on it: what
//! kind of failure it is ([`LogError::kind`]) and whether the failed write may have
//! been stored ([`LogError::outcome`]).

use crate::{Epoch, Offset, Partition};
use std::fmt;

/// Which stored record a corruption was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordRef {
    /// The entry at this offset.
    Entry(Offset),
    /// The partition's snapshot.
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
    /// The record is shorter than its header says.
    #[error("truncated: {len} bytes")]
    Truncated {
        /// The bytes present.
        len: usize,
    },
    /// The bytes changed after they were written.
    #[error("checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    Checksum {
        /// The checksum written with the record.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// Written by a format this build does not read.
    #[error("unknown format version {0}")]
    Version(u8),
    /// A batch record holds bytes after the entries its count announces.
    #[error("{extra} bytes after the last entry of a batch")]
    Trailing {
        /// The bytes left over.
        extra: usize,
    },
    /// The record is stored under another offset than its own.
    #[error("record says it is at offset {found}")]
    Misplaced {
        /// The offset the record carries.
        found: Offset,
    },
    /// A later entry carries an older leadership epoch, which fencing forbids.
    #[error("epoch {epoch} follows epoch {previous}")]
    EpochRegressed {
        /// The entry's epoch.
        epoch: Epoch,
        /// The epoch of the entry before it.
        previous: Epoch,
    },
    /// A record inside the log's bounds is absent.
    #[error("missing: the log ends at {end}")]
    Missing {
        /// Where the log ends.
        end: Offset,
    },
    /// The record's checksum holds but its contents do not decode.
    #[error("undecodable payload: {0}")]
    Payload(String),
    /// The log ends inside a batch: entries of an acknowledged append are gone.
    #[error("torn batch: the batch runs to {batch_end} but the log ends at {end}")]
    TornBatch {
        /// Where the batch says it ends.
        batch_end: Offset,
        /// Where the log ends.
        end: Offset,
    },
    /// An entry that starts a batch says the batch ends at or before the entry itself.
    #[error("record says its batch ends at {batch_end}, not after the record")]
    BadBatchEnd {
        /// The end the entry carries.
        batch_end: Offset,
    },
    /// An entry disagrees with the entries before it about where their batch ends.
    #[error("record says its batch ends at {found}, the batch it is in ends at {expected}")]
    BatchMismatch {
        /// The end this entry carries.
        found: Offset,
        /// The end the batch's first entry carries.
        expected: Offset,
    },
    /// The snapshot covers entries the log does not hold (or no longer holds).
    #[error("the snapshot is at {offset} but the log holds entries [{first}, {end})")]
    SnapshotOutsideLog {
        /// The offset the snapshot covers up to.
        offset: Offset,
        /// The first entry the log holds.
        first: Offset,
        /// Where the log ends.
        end: Offset,
    },
}

/// What a failed call left in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The store refused or failed the call before changing anything: nothing of it is
    /// stored, and retrying it cannot store it twice.
    NotWritten,
    /// The call may have taken effect (a connection broke after the request was sent, a
    /// sync failed after the write, the store's state could not be read back). Read
    /// [`Log::bounds`](crate::Log::bounds) before retrying an append.
    Unknown,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::NotWritten => "nothing was written",
            Outcome::Unknown => "it may or may not have been written",
        })
    }
}

/// The classes of [`LogError`] a caller reacts to differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Another holder leads the partition, or this one stepped down ([`LogError::Fenced`],
    /// [`LogError::LeaseHeld`]). This holder must stop writing; waiting will not help.
    Deposed,
    /// The store is unreachable or refuses service for a while: connection refused or
    /// broken, a timeout, a server loading its data, a read-only replica, a cluster
    /// without quorum, too few replicas acknowledging ([`LogError::Unavailable`],
    /// [`LogError::ReplicaTimeout`]). Retry later; this alone does not depose anyone, the
    /// lease's expiry does.
    Unavailable,
    /// The store has no room for the write: a full disk, a Valkey at its memory limit or
    /// refusing writes because it cannot persist ([`LogError::NoSpace`]). Nothing more can
    /// be made durable until space is freed; reads still work.
    NoSpace,
    /// Stored data is damaged ([`LogError::Corrupt`], [`LogError::Damaged`]). Retrying
    /// cannot help; an operator must restore or replace the data.
    Corrupt,
    /// The call contradicts the log's state ([`LogError::OffsetMismatch`],
    /// [`LogError::Trimmed`], [`LogError::SnapshotOutOfRange`]): the caller's view of the
    /// log is wrong. Nothing was written.
    Rejected,
    /// Any other failure of the store ([`LogError::Storage`]).
    Storage,
}

/// A failed log call, naming the partition and what it found.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The caller's epoch is not the partition's current one: another leader was
    /// elected (or this one stepped down). Nothing was written.
    #[error("partition {partition}: epoch {epoch} is fenced; the current epoch is {current}")]
    Fenced {
        /// The partition the call was on.
        partition: Partition,
        /// The epoch the caller wrote under.
        epoch: Epoch,
        /// The partition's epoch now.
        current: Epoch,
    },
    /// Another holder's lease has not expired, so leadership cannot be taken.
    #[error("partition {partition}: leadership is held by {holder:?} until its lease expires")]
    LeaseHeld {
        /// The partition the call was on.
        partition: Partition,
        /// Who holds the lease.
        holder: String,
    },
    /// The caller's idea of the log's end is wrong; nothing was written.
    #[error(
        "partition {partition}: append expected the log to end at {expected}, it ends at {actual}"
    )]
    OffsetMismatch {
        /// The partition the call was on.
        partition: Partition,
        /// Where the caller thought the log ends.
        expected: Offset,
        /// Where it ends.
        actual: Offset,
    },
    /// A read asked for entries a snapshot already replaced.
    #[error("partition {partition}: offset {offset} is trimmed; the log starts at {first}")]
    Trimmed {
        /// The partition the call was on.
        partition: Partition,
        /// The offset asked for.
        offset: Offset,
        /// The first entry still held.
        first: Offset,
    },
    /// A snapshot was offered for an offset the log does not span.
    #[error("partition {partition}: snapshot at {offset} is outside the log [{first}, {end}]")]
    SnapshotOutOfRange {
        /// The partition the call was on.
        partition: Partition,
        /// The snapshot's offset.
        offset: Offset,
        /// The first entry held.
        first: Offset,
        /// Where the log ends.
        end: Offset,
    },
    /// A stored record is damaged, missing or out of place. `location` names where the
    /// record is kept (a file, a server and key) when the reader knows it.
    #[error("{}partition {partition}, {record}: {corruption}", at(location))]
    Corrupt {
        /// The partition the record belongs to.
        partition: Partition,
        /// Which record.
        record: RecordRef,
        /// What is wrong with it.
        corruption: Corruption,
        /// Where it is kept; empty when unknown.
        location: String,
    },
    /// The store itself is damaged below the level of records: a page of the file fails
    /// its checksum, the file is cut short or has bytes appended, or the storage engine
    /// gave up on it.
    #[error("{store} is damaged: {problem}")]
    Damaged {
        /// The store: a file path or a server.
        store: String,
        /// What the storage engine reported.
        problem: String,
    },
    /// A write was made durable on the primary but fewer replicas than asked for
    /// acknowledged it in time. It may still be lost by a failover.
    #[error("partition {partition}: {acked} of {wanted} replicas acknowledged the write")]
    ReplicaTimeout {
        /// The partition written.
        partition: Partition,
        /// Replicas asked to acknowledge.
        wanted: usize,
        /// Replicas that did.
        acked: usize,
    },
    /// The store has no space for the write (disk full, quota, memory limit).
    #[error("partition {partition}: not durable: no space left on {store} ({outcome})")]
    NoSpace {
        /// The partition written.
        partition: Partition,
        /// The full store.
        store: String,
        /// Whether the write may have landed.
        outcome: Outcome,
    },
    /// The store cannot be reached or refuses service for now.
    #[error("partition {partition}: {store} is unavailable: {reason} ({outcome})")]
    Unavailable {
        /// The partition the call was on.
        partition: Partition,
        /// The store that cannot be reached.
        store: String,
        /// What the client library reported.
        reason: String,
        /// Whether a write may have landed.
        outcome: Outcome,
    },
    /// Any other failure of the store.
    #[error("partition {partition}: storage failed: {message}")]
    Storage {
        /// The partition the call was on.
        partition: Partition,
        /// What the store reported.
        message: String,
    },
}

fn at(location: &str) -> String {
    if location.is_empty() {
        String::new()
    } else {
        format!("{location}: ")
    }
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
            LogError::Damaged { .. } => "damaged",
            LogError::ReplicaTimeout { .. } => "replica_timeout",
            LogError::NoSpace { .. } => "no_space",
            LogError::Unavailable { .. } => "unavailable",
            LogError::Storage { .. } => "storage",
        }
    }

    /// Which class of failure this is; see [`ErrorKind`] for how to react to each.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LogError::Fenced { .. } | LogError::LeaseHeld { .. } => ErrorKind::Deposed,
            LogError::OffsetMismatch { .. }
            | LogError::Trimmed { .. }
            | LogError::SnapshotOutOfRange { .. } => ErrorKind::Rejected,
            LogError::Corrupt { .. } | LogError::Damaged { .. } => ErrorKind::Corrupt,
            LogError::ReplicaTimeout { .. } | LogError::Unavailable { .. } => {
                ErrorKind::Unavailable
            }
            LogError::NoSpace { .. } => ErrorKind::NoSpace,
            LogError::Storage { .. } => ErrorKind::Storage,
        }
    }

    /// What the failed call left in the store. Refusals the store checks before writing
    /// (fencing, offsets, range) wrote nothing; a write to a replica set that timed out,
    /// damage, and unclassified storage failures leave the outcome unknown.
    pub fn outcome(&self) -> Outcome {
        match self {
            LogError::Fenced { .. }
            | LogError::LeaseHeld { .. }
            | LogError::OffsetMismatch { .. }
            | LogError::Trimmed { .. }
            | LogError::SnapshotOutOfRange { .. } => Outcome::NotWritten,
            LogError::NoSpace { outcome, .. } | LogError::Unavailable { outcome, .. } => *outcome,
            LogError::Corrupt { .. }
            | LogError::Damaged { .. }
            | LogError::ReplicaTimeout { .. }
            | LogError::Storage { .. } => Outcome::Unknown,
        }
    }

    /// The store is unreachable or refuses service for now: retry later.
    pub fn is_unavailable(&self) -> bool {
        self.kind() == ErrorKind::Unavailable
    }

    /// The store is out of space: nothing can be made durable until space is freed.
    pub fn is_no_space(&self) -> bool {
        self.kind() == ErrorKind::NoSpace
    }

    /// This holder no longer leads the partition.
    pub fn is_deposed(&self) -> bool {
        self.kind() == ErrorKind::Deposed
    }

    /// Stored data is damaged; no retry will help.
    pub fn is_corrupt(&self) -> bool {
        self.kind() == ErrorKind::Corrupt
    }

    /// The failure is expected to pass by itself (the store comes back, space is freed)
    /// and the failed call stored nothing, so retrying it as it was is safe.
    pub fn is_transient_and_not_written(&self) -> bool {
        matches!(self.kind(), ErrorKind::Unavailable | ErrorKind::NoSpace)
            && self.outcome() == Outcome::NotWritten
    }

    /// Whether the same call may succeed later without anyone intervening.
    pub fn retryable(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Unavailable | ErrorKind::NoSpace | ErrorKind::Storage
        ) || matches!(self, LogError::LeaseHeld { .. })
    }

    /// An unclassified store failure, keeping the store's message.
    pub fn storage(partition: Partition, err: impl fmt::Display) -> LogError {
        LogError::Storage {
            partition,
            message: err.to_string(),
        }
    }

    /// A corrupt record, its location not yet known (see [`LogError::located`]).
    pub fn corrupt(partition: Partition, record: RecordRef, corruption: Corruption) -> LogError {
        LogError::Corrupt {
            partition,
            record,
            corruption,
            location: String::new(),
        }
    }

    /// Names where a corrupt record is kept, unless the error already names it.
    pub fn located(mut self, store: &str) -> LogError {
        if let LogError::Corrupt { location, .. } = &mut self {
            if location.is_empty() {
                store.clone_into(location);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_outcomes() {
        let no_space = LogError::NoSpace {
            partition: 2,
            store: "/data/keel-log.redb".into(),
            outcome: Outcome::NotWritten,
        };
        assert_eq!(
            no_space.to_string(),
            "partition 2: not durable: no space left on /data/keel-log.redb (nothing was written)"
        );
        assert!(no_space.is_no_space() && no_space.is_transient_and_not_written());
        assert!(no_space.retryable() && !no_space.is_unavailable());
        let fenced = LogError::Fenced {
            partition: 2,
            epoch: 3,
            current: 4,
        };
        assert!(fenced.is_deposed() && !fenced.retryable());
        assert_eq!(fenced.outcome(), Outcome::NotWritten);
        let lost = LogError::Unavailable {
            partition: 2,
            store: "valkey at redis://127.0.0.1:1".into(),
            reason: "connection refused".into(),
            outcome: Outcome::Unknown,
        };
        assert!(lost.is_unavailable() && !lost.is_transient_and_not_written());
        let corrupt = LogError::corrupt(2, RecordRef::Entry(9), Corruption::Version(7));
        assert_eq!(
            corrupt.to_string(),
            "partition 2, entry 9: unknown format version 7"
        );
        let corrupt = corrupt.located("/d/keel-log.redb").located("elsewhere");
        assert_eq!(
            corrupt.to_string(),
            "/d/keel-log.redb: partition 2, entry 9: unknown format version 7"
        );
        assert!(corrupt.is_corrupt() && !corrupt.retryable());
        assert_eq!(corrupt.outcome(), Outcome::Unknown);
    }
}
