//! The contract every backend implements: a fenced, append-only log per partition with
//! one snapshot that lets older entries be trimmed.

use crate::error::LogError;
use std::future::Future;
use std::time::{Duration, Instant};

/// A partition of the coordinator's state; each has its own log and its own leader.
pub type Partition = u32;
/// A leadership term. Granted epochs only ever increase per partition.
pub type Epoch = u64;
/// Position of an entry in its partition's log, from 0.
pub type Offset = u64;

/// One stored entry, checked against its checksum and position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Where it sits in the partition's log.
    pub offset: Offset,
    /// The epoch of the leader that appended it.
    pub epoch: Epoch,
    /// Where the append that stored it ended; None for entries written before frames
    /// recorded it (each counts as a batch of its own).
    pub batch_end: Option<Offset>,
    /// The encoded [`Entry`](crate::Entry).
    pub payload: Vec<u8>,
}

/// A state saved at `offset`: it reflects every entry before `offset` and none after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The first entry it does not reflect.
    pub offset: Offset,
    /// Digest of `state`, checked after restoring it.
    pub digest: Vec<u8>,
    /// `Engine::snapshot` bytes.
    pub state: Vec<u8>,
}

/// The live part of a partition's log: entries `first..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// The first entry still held (later than 0 once a snapshot trimmed the log).
    pub first: Offset,
    /// Where the next append goes.
    pub end: Offset,
}

/// Leadership of one partition, as granted to `holder`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leadership {
    /// The partition led.
    pub partition: Partition,
    /// Who leads it.
    pub holder: String,
    /// The epoch every append of this leader carries.
    pub epoch: Epoch,
    /// Measured from before the request was sent, so the holder stops believing it
    /// leads no later than the store lets another holder take over.
    pub valid_until: Instant,
}

impl Leadership {
    /// The lease a backend hands out: valid for `ttl` from `asked`, the moment before
    /// the request was sent.
    pub fn granted(
        partition: Partition,
        holder: &str,
        epoch: Epoch,
        asked: Instant,
        ttl: Duration,
    ) -> Leadership {
        Leadership {
            partition,
            holder: holder.to_owned(),
            epoch,
            valid_until: asked + ttl,
        }
    }

    /// The same lease after a renewal asked at `asked`.
    pub fn renewed(&self, asked: Instant, ttl: Duration) -> Leadership {
        Leadership {
            valid_until: asked + ttl,
            ..self.clone()
        }
    }

    /// Whether the holder may still act as leader at `now`.
    pub fn is_valid(&self, now: Instant) -> bool {
        now < self.valid_until
    }
}

/// A durable log of partitions.
///
/// Safety rests on the epoch alone: `append` and `store_snapshot` succeed only under the
/// partition's current epoch, checked atomically with the write. A new `acquire` or a
/// `step_down` moves the epoch on, so a deposed leader's writes are refused with
/// [`LogError::Fenced`] and nothing of them is stored. Lease expiry only decides when
/// another holder may take over.
///
/// # Failures
///
/// Every failure is a [`LogError`] whose [`kind`](LogError::kind) says how to react and
/// whose [`outcome`](LogError::outcome) says whether the failed call may have been
/// stored ([`Outcome::NotWritten`](crate::Outcome::NotWritten) or
/// [`Outcome::Unknown`](crate::Outcome::Unknown)):
///
/// - [`ErrorKind::Deposed`](crate::ErrorKind::Deposed) (`Fenced`, `LeaseHeld`): another
///   holder leads. Stop writing; nothing was written.
/// - [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) (`Unavailable`,
///   `ReplicaTimeout`): the store is unreachable or refuses service for now (Valkey down,
///   a timeout, `LOADING`, `READONLY`, a cluster without quorum). Leadership is not lost
///   by this: the epoch stays current until someone acquires the partition, and
///   [`Log::renew`] extends a lapsed lease whose epoch is still current. Retry with
///   backoff; when the outcome is unknown, read [`Log::bounds`] before appending again.
/// - [`ErrorKind::NoSpace`](crate::ErrorKind::NoSpace) (`NoSpace`, displayed as
///   `not durable: no space left on <store>`): a full disk or quota under the redb file,
///   a Valkey at `maxmemory` (`OOM`) or unable to persist (`MISCONF`). Nothing more can
///   be made durable until space is freed; the same log resumes then.
/// - [`ErrorKind::Corrupt`](crate::ErrorKind::Corrupt) (`Corrupt`, `Damaged`): stored
///   data is damaged; the error names the store and the record. Retrying cannot help.
/// - [`ErrorKind::Rejected`](crate::ErrorKind::Rejected): the caller's view of the log
///   is wrong (offset, trimmed, snapshot range); nothing was written.
/// - [`ErrorKind::Storage`](crate::ErrorKind::Storage): anything else; outcome unknown.
///
/// [`LogError::is_transient_and_not_written`] answers the common question "may I retry
/// this exact call later without storing it twice?".
pub trait Log: Send + Sync {
    /// Whether calls do their I/O synchronously inside the returned future (an embedded
    /// store that fsyncs in place), so an async runtime should run them on a thread
    /// allowed to block.
    fn blocks(&self) -> bool {
        false
    }

    /// Where this log keeps its data (a file, a server), to name it in errors about
    /// damaged records.
    fn location(&self) -> String {
        "the log".into()
    }

    /// Takes leadership of `partition` with a fresh, higher epoch. Refused with
    /// [`LogError::LeaseHeld`] while another holder's lease is live; the same holder may
    /// take it again (a restarted coordinator), which fences its older epoch.
    fn acquire(
        &self,
        partition: Partition,
        holder: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<Leadership, LogError>> + Send;

    /// Extends a lease whose epoch is still current, even if it has just expired and
    /// nobody took over.
    fn renew(
        &self,
        lease: &Leadership,
        ttl: Duration,
    ) -> impl Future<Output = Result<Leadership, LogError>> + Send;

    /// Gives leadership up: the epoch moves on, so the lease's epoch is fenced from now.
    fn step_down(&self, lease: &Leadership) -> impl Future<Output = Result<(), LogError>> + Send;

    /// Appends `payloads` at `start..start + len` as one atomic batch: all are stored or
    /// none. Refused if `epoch` is not current or the log does not end at `start`.
    /// Returns the new end. When [`LogError::outcome`] is unknown (the store may have
    /// applied the batch before the connection broke or a sync failed): read
    /// [`Log::bounds`] before retrying; the `start` check keeps a retry from storing a
    /// batch twice.
    fn append(
        &self,
        partition: Partition,
        epoch: Epoch,
        start: Offset,
        payloads: &[Vec<u8>],
    ) -> impl Future<Output = Result<Offset, LogError>> + Send;

    /// Up to `max` records from `from` on, each checked. Refused with
    /// [`LogError::Trimmed`] when `from` is before the first live entry.
    fn read(
        &self,
        partition: Partition,
        from: Offset,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Record>, LogError>> + Send;

    /// The partition's live range of entries.
    fn bounds(&self, partition: Partition)
        -> impl Future<Output = Result<Bounds, LogError>> + Send;

    /// Replaces the partition's snapshot and trims the entries it covers, atomically and
    /// under `epoch`. The snapshot's offset must lie between the log's first entry and
    /// its end.
    fn store_snapshot(
        &self,
        partition: Partition,
        epoch: Epoch,
        snapshot: &Snapshot,
    ) -> impl Future<Output = Result<(), LogError>> + Send;

    /// The newest snapshot, checked.
    fn load_snapshot(
        &self,
        partition: Partition,
    ) -> impl Future<Output = Result<Option<Snapshot>, LogError>> + Send;
}

impl Bounds {
    /// Refuses an append at `start` unless the log ends there.
    pub fn expect_end(self, partition: Partition, start: Offset) -> Result<(), LogError> {
        if start == self.end {
            Ok(())
        } else {
            Err(LogError::OffsetMismatch {
                partition,
                expected: start,
                actual: self.end,
            })
        }
    }

    /// Refuses a read from before the first live entry.
    pub fn expect_live(self, partition: Partition, from: Offset) -> Result<(), LogError> {
        if from >= self.first {
            Ok(())
        } else {
            Err(LogError::Trimmed {
                partition,
                offset: from,
                first: self.first,
            })
        }
    }

    /// Refuses a snapshot offset outside `first..=end`.
    pub fn expect_snapshot(self, partition: Partition, offset: Offset) -> Result<(), LogError> {
        if (self.first..=self.end).contains(&offset) {
            Ok(())
        } else {
            Err(LogError::SnapshotOutOfRange {
                partition,
                offset,
                first: self.first,
                end: self.end,
            })
        }
    }
}
