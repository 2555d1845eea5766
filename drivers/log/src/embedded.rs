//! The embedded default: every partition's log in one redb file under a data directory.
//! Each call is one redb transaction, and a write transaction is fsynced before it
//! returns, so an acknowledged batch survives a process or machine crash and a batch
//! cut short by a crash leaves no trace.
//!
//! Calls block the calling thread for the duration of one transaction (an fsync for
//! writes); an async caller that cannot afford that runs them on a blocking thread.

use crate::error::{Corruption, LogError, RecordRef};
use crate::lease::{now_ms, LeaseState};
use crate::record::{decode_entry, decode_snapshot, encode_batch, encode_snapshot};
use crate::{Bounds, Epoch, Lease, Log, Offset, Partition, Record, Snapshot};
use redb::{Database, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Framed entries by (partition, offset).
pub(crate) const ENTRIES: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("entries");
/// Per partition: lease and first live offset.
const META: TableDefinition<u32, &[u8]> = TableDefinition::new("partitions");
/// Per partition: the framed newest snapshot.
const SNAPSHOTS: TableDefinition<u32, &[u8]> = TableDefinition::new("snapshots");

/// The file name of the log inside a data directory.
pub const FILE_NAME: &str = "keel-log.redb";

pub struct RedbLog {
    db: Database,
    path: PathBuf,
}

/// What the partitions table holds for one partition.
#[derive(Default)]
struct Meta {
    lease: LeaseState,
    first: Offset,
}

impl RedbLog {
    /// Opens (creating if needed) the log in `data_dir`/[`FILE_NAME`].
    pub fn open(data_dir: &Path) -> Result<RedbLog, LogError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| LogError::storage(0, format!("{}: {e}", data_dir.display())))?;
        RedbLog::open_file(&data_dir.join(FILE_NAME))
    }

    pub fn open_file(path: &Path) -> Result<RedbLog, LogError> {
        let fail =
            |e: &dyn std::fmt::Display| LogError::storage(0, format!("{}: {e}", path.display()));
        let db = Database::create(path).map_err(|e| fail(&e))?;
        let tx = db.begin_write().map_err(|e| fail(&e))?;
        tx.open_table(ENTRIES).map_err(|e| fail(&e))?;
        tx.open_table(META).map_err(|e| fail(&e))?;
        tx.open_table(SNAPSHOTS).map_err(|e| fail(&e))?;
        tx.commit().map_err(|e| fail(&e))?;
        Ok(RedbLog {
            db,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one write transaction on `partition`'s metadata and commits it when
    /// `f` succeeds; on failure nothing is written.
    fn write<T>(
        &self,
        partition: Partition,
        f: impl FnOnce(&redb::WriteTransaction, &mut Meta) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        let st = |e: &dyn std::fmt::Display| LogError::storage(partition, e);
        let tx = self.db.begin_write().map_err(|e| st(&e))?;
        let mut meta = {
            let table = tx.open_table(META).map_err(|e| st(&e))?;
            let stored = table.get(partition).map_err(|e| st(&e))?;
            match stored {
                Some(bytes) => decode_meta(partition, bytes.value())?,
                None => Meta::default(),
            }
        };
        let out = f(&tx, &mut meta)?;
        tx.open_table(META)
            .and_then(|mut table| {
                table
                    .insert(partition, encode_meta(&meta).as_slice())
                    .map(drop)
                    .map_err(Into::into)
            })
            .map_err(|e| st(&e))?;
        tx.commit().map_err(|e| st(&e))?;
        Ok(out)
    }

    fn read_meta(
        &self,
        tx: &redb::ReadTransaction,
        partition: Partition,
    ) -> Result<Meta, LogError> {
        let st = |e: &dyn std::fmt::Display| LogError::storage(partition, e);
        let table = tx.open_table(META).map_err(|e| st(&e))?;
        match table.get(partition).map_err(|e| st(&e))? {
            Some(bytes) => decode_meta(partition, bytes.value()),
            None => Ok(Meta::default()),
        }
    }
}

fn bounds_in(
    table: &impl ReadableTable<(u32, u64), &'static [u8]>,
    partition: Partition,
    first: Offset,
) -> Result<Bounds, LogError> {
    let last = table
        .range((partition, first)..=(partition, u64::MAX))
        .and_then(|mut range| range.next_back().transpose())
        .map_err(|e| LogError::storage(partition, e))?;
    let end = last.map_or(first, |(key, _)| key.value().1 + 1);
    Ok(Bounds { first, end })
}

impl Log for RedbLog {
    fn blocks(&self) -> bool {
        true
    }

    async fn acquire(
        &self,
        partition: Partition,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, LogError> {
        let asked = Instant::now();
        let epoch = self.write(partition, |_, meta| {
            meta.lease.acquire(partition, holder, now_ms(), ttl)
        })?;
        Ok(Lease::granted(partition, holder, epoch, asked, ttl))
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease, LogError> {
        let asked = Instant::now();
        self.write(lease.partition, |_, meta| {
            meta.lease
                .renew(lease.partition, lease.epoch, now_ms(), ttl)
        })?;
        Ok(lease.renewed(asked, ttl))
    }

    async fn step_down(&self, lease: &Lease) -> Result<(), LogError> {
        self.write(lease.partition, |_, meta| {
            meta.lease.step_down(lease.partition, lease.epoch)
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
        self.write(partition, |tx, meta| {
            meta.lease.check(partition, epoch)?;
            let st = |e: &dyn std::fmt::Display| LogError::storage(partition, e);
            let mut table = tx.open_table(ENTRIES).map_err(|e| st(&e))?;
            bounds_in(&table, partition, meta.first)?.expect_end(partition, start)?;
            for (frame, offset) in frames.iter().zip(start..) {
                table
                    .insert((partition, offset), frame.as_slice())
                    .map_err(|e| st(&e))?;
            }
            Ok(start + frames.len() as u64)
        })
    }

    async fn read(
        &self,
        partition: Partition,
        from: Offset,
        max: usize,
    ) -> Result<Vec<Record>, LogError> {
        let st = |e: &dyn std::fmt::Display| LogError::storage(partition, e);
        let tx = self.db.begin_read().map_err(|e| st(&e))?;
        let meta = self.read_meta(&tx, partition)?;
        let table = tx.open_table(ENTRIES).map_err(|e| st(&e))?;
        let bounds = bounds_in(&table, partition, meta.first)?;
        bounds.expect_live(partition, from)?;
        if from >= bounds.end {
            return Ok(Vec::new());
        }
        let range = table
            .range((partition, from)..(partition, bounds.end))
            .map_err(|e| st(&e))?;
        let mut records = Vec::with_capacity(max.min((bounds.end - from) as usize));
        for (item, expected) in range.take(max).zip(from..) {
            let (key, frame) = item.map_err(|e| st(&e))?;
            let offset = key.value().1;
            if offset != expected {
                let missing = Corruption::Missing { end: offset };
                return Err(LogError::corrupt(
                    partition,
                    RecordRef::Entry(expected),
                    missing,
                ));
            }
            records.push(decode_entry(partition, offset, frame.value())?);
        }
        Ok(records)
    }

    async fn bounds(&self, partition: Partition) -> Result<Bounds, LogError> {
        let st = |e: &dyn std::fmt::Display| LogError::storage(partition, e);
        let tx = self.db.begin_read().map_err(|e| st(&e))?;
        let meta = self.read_meta(&tx, partition)?;
        let table = tx.open_table(ENTRIES).map_err(|e| st(&e))?;
        bounds_in(&table, partition, meta.first)
    }

    /// Stores the snapshot and moves the log's start in one transaction, trimming at
    /// most [`TRIM_CHUNK`] covered entries in it and the rest [`TRIM_CHUNK`] per
    /// transaction after it: trimming 100,000 entries in one transaction held redb's
    /// only writer for seconds (7 s in a release build), and a lease renewal, a write
    /// too, waited behind it until the lease lapsed. Entries before the start are never
    /// read again, whichever transaction removes them.
    async fn store_snapshot(
        &self,
        partition: Partition,
        epoch: Epoch,
        snapshot: &Snapshot,
    ) -> Result<(), LogError> {
        let frame = encode_snapshot(snapshot);
        let mut more = self.write(partition, |tx, meta| {
            meta.lease.check(partition, epoch)?;
            let st = |e: &dyn std::fmt::Display| LogError::storage(partition, e);
            let mut entries = tx.open_table(ENTRIES).map_err(|e| st(&e))?;
            bounds_in(&entries, partition, meta.first)?
                .expect_snapshot(partition, snapshot.offset)?;
            let mut snapshots = tx.open_table(SNAPSHOTS).map_err(|e| st(&e))?;
            snapshots
                .insert(partition, frame.as_slice())
                .map_err(|e| st(&e))?;
            meta.first = snapshot.offset;
            trim_chunk(&mut entries, partition, snapshot.offset)
        })?;
        while more {
            more = self.write(partition, |tx, meta| {
                let st = |e: &dyn std::fmt::Display| LogError::storage(partition, e);
                let mut entries = tx.open_table(ENTRIES).map_err(|e| st(&e))?;
                trim_chunk(&mut entries, partition, meta.first)
            })?;
        }
        Ok(())
    }

    async fn load_snapshot(&self, partition: Partition) -> Result<Option<Snapshot>, LogError> {
        let st = |e: &dyn std::fmt::Display| LogError::storage(partition, e);
        let tx = self.db.begin_read().map_err(|e| st(&e))?;
        let table = tx.open_table(SNAPSHOTS).map_err(|e| st(&e))?;
        let stored = table.get(partition).map_err(|e| st(&e))?;
        stored
            .map(|frame| decode_snapshot(partition, frame.value()))
            .transpose()
    }
}

/// Entries trimmed per write transaction.
const TRIM_CHUNK: u64 = 1024;

/// Removes up to [`TRIM_CHUNK`] of the entries before `first`, oldest first; returns
/// whether any are left.
fn trim_chunk(
    entries: &mut redb::Table<(u32, u64), &[u8]>,
    partition: Partition,
    first: Offset,
) -> Result<bool, LogError> {
    let st = |e: &dyn std::fmt::Display| LogError::storage(partition, e);
    let oldest = entries
        .range((partition, 0)..(partition, first))
        .and_then(|mut range| range.next().transpose())
        .map_err(|e| st(&e))?
        .map(|(key, _)| key.value().1);
    let Some(from) = oldest else {
        return Ok(false);
    };
    let to = from.saturating_add(TRIM_CHUNK).min(first);
    entries
        .retain_in((partition, from)..(partition, to), |_, _| false)
        .map_err(|e| st(&e))?;
    Ok(to < first)
}

/// `epoch u64 | expires_ms u64 | first u64 | held u8 | holder utf-8`.
fn encode_meta(meta: &Meta) -> Vec<u8> {
    let holder = meta.lease.holder.as_deref().unwrap_or("");
    let mut out = Vec::with_capacity(25 + holder.len());
    out.extend_from_slice(&meta.lease.epoch.to_le_bytes());
    out.extend_from_slice(&meta.lease.expires_ms.to_le_bytes());
    out.extend_from_slice(&meta.first.to_le_bytes());
    out.push(u8::from(meta.lease.holder.is_some()));
    out.extend_from_slice(holder.as_bytes());
    out
}

fn decode_meta(partition: Partition, bytes: &[u8]) -> Result<Meta, LogError> {
    let fail = |corruption| LogError::corrupt(partition, RecordRef::Meta, corruption);
    if bytes.len() < 25 {
        return Err(fail(Corruption::Truncated { len: bytes.len() }));
    }
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
    let holder =
        std::str::from_utf8(&bytes[25..]).map_err(|e| fail(Corruption::Payload(e.to_string())))?;
    Ok(Meta {
        lease: LeaseState {
            epoch: word(0),
            expires_ms: word(8),
            holder: (bytes[24] == 1).then(|| holder.to_owned()),
        },
        first: word(16),
    })
}
