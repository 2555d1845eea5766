//! A log kept in process memory, for tests and the simulator. It stores the same framed
//! records as the durable backends, so checksum and recovery paths run against it too.

use crate::error::LogError;
use crate::leadership::{now_ms, LeadershipState};
use crate::record::{decode_entry, decode_snapshot, encode_batch, encode_snapshot};
use crate::{Bounds, Epoch, Leadership, Log, Offset, Partition, Record, Snapshot};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Default)]
struct PartitionLog {
    lease: LeadershipState,
    first: Offset,
    frames: VecDeque<Vec<u8>>,
    snapshot: Option<Vec<u8>>,
}

impl PartitionLog {
    fn bounds(&self) -> Bounds {
        Bounds {
            first: self.first,
            end: self.first + self.frames.len() as u64,
        }
    }
}

/// A [`Log`](crate::Log) held in memory: for tests, the simulator and a coordinator
/// that need not survive its process.
#[derive(Default)]
pub struct MemoryLog {
    partitions: Mutex<BTreeMap<Partition, PartitionLog>>,
}

impl MemoryLog {
    /// An empty log with no partitions.
    pub fn new() -> MemoryLog {
        MemoryLog::default()
    }

    /// Rewrites the stored bytes of one entry, to test what readers do with damage.
    /// Returns false when no entry is stored at `offset`.
    pub fn tamper(
        &self,
        partition: Partition,
        offset: Offset,
        damage: impl FnOnce(&mut Vec<u8>),
    ) -> bool {
        let mut partitions = self.lock();
        let Some(log) = partitions.get_mut(&partition) else {
            return false;
        };
        let Some(index) = offset.checked_sub(log.first) else {
            return false;
        };
        match log.frames.get_mut(index as usize) {
            Some(frame) => {
                damage(frame);
                true
            }
            None => false,
        }
    }

    /// Drops the entries from `end` on, as a store that lost the tail of its log, to
    /// test what readers do with it. Returns false when the log does not reach `end`.
    pub fn truncate(&self, partition: Partition, end: Offset) -> bool {
        let mut partitions = self.lock();
        let Some(log) = partitions.get_mut(&partition) else {
            return false;
        };
        let Some(keep) = end.checked_sub(log.first) else {
            return false;
        };
        let keep = keep as usize;
        if keep > log.frames.len() {
            return false;
        }
        log.frames.truncate(keep);
        true
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Partition, PartitionLog>> {
        // A panic while holding the lock cannot leave a partition half-written: every
        // mutation below checks first and then changes state without failing.
        self.partitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with<T>(
        &self,
        partition: Partition,
        f: impl FnOnce(&mut PartitionLog) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        f(self.lock().entry(partition).or_default())
    }
}

impl Log for MemoryLog {
    fn location(&self) -> String {
        "memory".into()
    }

    async fn acquire(
        &self,
        partition: Partition,
        holder: &str,
        ttl: Duration,
    ) -> Result<Leadership, LogError> {
        let asked = Instant::now();
        let epoch = self.with(partition, |log| {
            log.lease.acquire(partition, holder, now_ms(), ttl)
        })?;
        Ok(Leadership::granted(partition, holder, epoch, asked, ttl))
    }

    async fn renew(&self, lease: &Leadership, ttl: Duration) -> Result<Leadership, LogError> {
        let asked = Instant::now();
        self.with(lease.partition, |log| {
            log.lease.renew(lease.partition, lease.epoch, now_ms(), ttl)
        })?;
        Ok(lease.renewed(asked, ttl))
    }

    async fn step_down(&self, lease: &Leadership) -> Result<(), LogError> {
        self.with(lease.partition, |log| {
            log.lease.step_down(lease.partition, lease.epoch)
        })
    }

    async fn append(
        &self,
        partition: Partition,
        epoch: Epoch,
        start: Offset,
        payloads: &[Vec<u8>],
    ) -> Result<Offset, LogError> {
        let frames = encode_batch(epoch, start, payloads);
        self.with(partition, |log| {
            log.lease.check(partition, epoch)?;
            log.bounds().expect_end(partition, start)?;
            log.frames.extend(frames);
            Ok(log.bounds().end)
        })
    }

    async fn read(
        &self,
        partition: Partition,
        from: Offset,
        max: usize,
    ) -> Result<Vec<Record>, LogError> {
        self.with(partition, |log| {
            log.bounds().expect_live(partition, from)?;
            let skip = (from - log.first) as usize;
            log.frames
                .iter()
                .skip(skip)
                .take(max)
                .zip(from..)
                .map(|(frame, offset)| decode_entry(partition, offset, frame))
                .collect()
        })
    }

    async fn bounds(&self, partition: Partition) -> Result<Bounds, LogError> {
        self.with(partition, |log| Ok(log.bounds()))
    }

    async fn store_snapshot(
        &self,
        partition: Partition,
        epoch: Epoch,
        snapshot: &Snapshot,
    ) -> Result<(), LogError> {
        let frame = encode_snapshot(snapshot);
        self.with(partition, |log| {
            log.lease.check(partition, epoch)?;
            log.bounds().expect_snapshot(partition, snapshot.offset)?;
            log.frames.drain(..(snapshot.offset - log.first) as usize);
            log.first = snapshot.offset;
            log.snapshot = Some(frame);
            Ok(())
        })
    }

    async fn load_snapshot(&self, partition: Partition) -> Result<Option<Snapshot>, LogError> {
        self.with(partition, |log| {
            log.snapshot
                .as_deref()
                .map(|frame| decode_snapshot(partition, frame))
                .transpose()
        })
    }
}
