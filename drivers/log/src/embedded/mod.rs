//! The embedded default: every partition's log in one redb file under a data directory.
//! Each call is one redb transaction. A write transaction commits in two phases (data
//! synced, then the header that makes it current, synced), so an acknowledged batch
//! survives a process or machine crash, a batch cut short by a crash leaves no trace,
//! and redb's recovery never falls back past a commit it acknowledged: a commit whose
//! pages fail their checksums is reported as damage instead.
//!
//! Opening checks every page of the file ([`RedbLog::open`] has the rule for missing
//! and empty logs). Any failure of redb, including a panic on a file it cannot make sense of,
//! becomes a typed error naming the file; after one, the database is closed and opened
//! again on the next call, which is also how the log resumes once a full disk has space
//! again.
//!
//! Calls block the calling thread for the duration of one transaction (two fsyncs for
//! writes); an async caller that cannot afford that runs them on a blocking thread.

mod disk;
mod failure;
mod meta;
mod open;
mod trim;

pub use disk::DiskFaults;
pub use open::{OpenError, RedbOptions, FILE_NAME, MARKER_NAME};

use crate::error::{Corruption, LogError, Outcome, RecordRef};
use crate::leadership::now_ms;
use crate::record::{decode_entry, decode_snapshot, encode_batch, encode_snapshot};
use crate::{Bounds, Epoch, Leadership, Log, Offset, Partition, Record, Snapshot};
use disk::DiskState;
use failure::{contain, Failure};
use meta::{decode_meta, encode_meta, Meta};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Framed entries by (partition, offset).
pub(crate) const ENTRIES: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("entries");
/// Per partition: lease and first live offset.
const META: TableDefinition<u32, &[u8]> = TableDefinition::new("partitions");
/// Per partition: the framed newest snapshot.
const SNAPSHOTS: TableDefinition<u32, &[u8]> = TableDefinition::new("snapshots");

/// The log in one redb file; see the module documentation of this crate.
pub struct RedbLog {
    path: PathBuf,
    options: RedbOptions,
    state: Arc<DiskState>,
    /// None after a failure closed it, until the next call opens it again.
    db: RwLock<Option<Database>>,
    backup: Option<PathBuf>,
}

/// How to tell, after a failed write, whether it reached the file.
enum Probe<'a> {
    /// The partition's metadata is what the write made it.
    Meta,
    /// The log grew past `start`.
    End { start: Offset },
    /// The stored snapshot is this one.
    Snapshot(&'a Snapshot),
}

impl RedbLog {
    /// Opens the log in `data_dir`/[`FILE_NAME`], by this rule, with the marker
    /// `data_dir`/[`MARKER_NAME`]:
    ///
    /// - Neither the log nor the marker exists (a new or never-used directory): a new,
    ///   empty log is created, then the marker.
    /// - The log exists and is not empty: it is opened and every page of it checked
    ///   (a damaged file is refused with [`OpenError::Damaged`]); the marker is written
    ///   if it is missing (a directory from before markers existed).
    /// - The log is missing but the marker exists: refused with [`OpenError::Missing`].
    /// - The log is empty (0 bytes): refused with [`OpenError::Empty`]. A new log is
    ///   built under another name and renamed into place, so this build never leaves an
    ///   empty log behind.
    ///
    /// With [`RedbOptions::init`] ([`RedbLog::open_with`]), a missing or empty log is
    /// replaced by a new, empty one instead of being refused; a log that holds anything
    /// is never replaced, a damaged one must be moved aside first.
    pub fn open(data_dir: &Path) -> Result<RedbLog, OpenError> {
        RedbLog::open_with(data_dir, RedbOptions::default())
    }

    /// [`RedbLog::open`] with options: `--init`, skipping the page check, a simulated
    /// disk.
    pub fn open_with(data_dir: &Path, options: RedbOptions) -> Result<RedbLog, OpenError> {
        let state = Arc::new(DiskState::default());
        let opened = open::open_dir(data_dir, &options, &state)?;
        Ok(RedbLog {
            path: data_dir.join(FILE_NAME),
            options,
            state,
            db: RwLock::new(Some(opened.db)),
            backup: opened.backup,
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where opening kept the original of a file it upgraded from redb's format v2.
    pub fn upgrade_backup(&self) -> Option<&Path> {
        self.backup.as_deref()
    }

    /// Runs `f` on the database, opening it again first if a failure closed it, and
    /// closes it when `f` fails in a way that leaves redb unusable.
    fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T, Failure>) -> Result<T, Failure> {
        self.ensure_open()?;
        let guard = self.db.read().unwrap_or_else(PoisonError::into_inner);
        let Some(db) = guard.as_ref() else {
            return Err(Failure::Redb(redb::Error::DatabaseClosed));
        };
        let result = contain(|| f(db));
        drop(guard);
        if result.as_ref().is_err_and(Failure::needs_reopen) {
            self.close();
        }
        result
    }

    fn ensure_open(&self) -> Result<(), Failure> {
        if self
            .db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
        {
            return Ok(());
        }
        let mut guard = self.db.write().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            let opened = open::open_existing(&self.path, &self.options, &self.state)
                .map_err(Failure::Reopen)?;
            *guard = Some(opened.db);
        }
        Ok(())
    }

    fn close(&self) {
        let old = self
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Dropping a database whose commit failed may itself fail inside redb.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(old)));
    }

    /// The typed error for a failed read.
    fn read_error(&self, partition: Partition, failure: Failure) -> LogError {
        let no_space = self.state.take_no_space();
        failure.into_log_error(partition, &self.path, no_space, Outcome::NotWritten)
    }

    /// Runs `f` in one write transaction on `partition`'s metadata and commits it when
    /// `f` succeeds; on a refusal nothing is written. When the commit itself fails
    /// before its first sync, its new state never became current; after that, the file
    /// is opened again and `probe` tells whether the write reached it.
    fn write<T>(
        &self,
        partition: Partition,
        probe: Probe<'_>,
        f: impl FnOnce(&WriteTransaction, &mut Meta) -> Result<T, Failure>,
    ) -> Result<T, LogError> {
        let mut metas: Option<(Meta, Meta)> = None;
        let mut synced = None;
        let result = self.with_db(|db| {
            synced = Some(self.state.syncs());
            let mut tx = db.begin_write()?;
            tx.set_two_phase_commit(true);
            let mut meta = meta_in(&tx.open_table(META)?, partition)?;
            let old = meta.clone();
            let out = f(&tx, &mut meta)?;
            tx.open_table(META)?
                .insert(partition, encode_meta(&meta).as_slice())?;
            metas = Some((old, meta));
            tx.commit()?;
            Ok(out)
        });
        result.map_err(|failure| {
            let no_space = self.state.take_no_space();
            let unsynced = synced.is_none_or(|before| self.state.syncs() == before);
            let outcome = match &failure {
                Failure::Log(_) => Outcome::NotWritten,
                _ if unsynced => Outcome::NotWritten,
                _ => self.outcome_of(partition, &probe, metas.as_ref()),
            };
            failure.into_log_error(partition, &self.path, no_space, outcome)
        })
    }

    /// Whether a write that failed left the file unchanged, looked up in the file as
    /// redb recovers it.
    fn outcome_of(
        &self,
        partition: Partition,
        probe: &Probe<'_>,
        metas: Option<&(Meta, Meta)>,
    ) -> Outcome {
        let landed = self.with_db(|db| {
            let tx = db.begin_read()?;
            match probe {
                Probe::Meta => {
                    let Some((old, new)) = metas else {
                        return Ok(false);
                    };
                    Ok(new != old && meta_in(&tx.open_table(META)?, partition)? == *new)
                }
                Probe::End { start } => {
                    let first = meta_in(&tx.open_table(META)?, partition)?.first;
                    Ok(bounds_in(&tx.open_table(ENTRIES)?, partition, first)?.end > *start)
                }
                Probe::Snapshot(snapshot) => {
                    let table = tx.open_table(SNAPSHOTS)?;
                    let stored = table.get(partition)?;
                    Ok(stored.is_some_and(|frame| frame.value() == encode_snapshot(snapshot)))
                }
            }
        });
        match landed {
            Ok(false) => Outcome::NotWritten,
            Ok(true) | Err(_) => Outcome::Unknown,
        }
    }
}

/// Makes sure every table exists, so readers can open them.
pub(crate) fn create_tables(db: &Database) -> Result<(), Failure> {
    let mut tx = db.begin_write()?;
    tx.set_two_phase_commit(true);
    tx.open_table(ENTRIES)?;
    tx.open_table(META)?;
    tx.open_table(SNAPSHOTS)?;
    tx.commit()?;
    Ok(())
}

fn meta_in(
    table: &impl ReadableTable<u32, &'static [u8]>,
    partition: Partition,
) -> Result<Meta, Failure> {
    match table.get(partition)? {
        Some(bytes) => Ok(decode_meta(partition, bytes.value())?),
        None => Ok(Meta::default()),
    }
}

fn bounds_in(
    table: &impl ReadableTable<(u32, u64), &'static [u8]>,
    partition: Partition,
    first: Offset,
) -> Result<Bounds, Failure> {
    let last = table
        .range((partition, first)..=(partition, u64::MAX))?
        .next_back()
        .transpose()?;
    let end = last.map_or(first, |(key, _)| key.value().1 + 1);
    Ok(Bounds { first, end })
}

impl Log for RedbLog {
    fn blocks(&self) -> bool {
        true
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn acquire(
        &self,
        partition: Partition,
        holder: &str,
        ttl: Duration,
    ) -> Result<Leadership, LogError> {
        let asked = Instant::now();
        let epoch = self.write(partition, Probe::Meta, |_, meta| {
            Ok(meta.lease.acquire(partition, holder, now_ms(), ttl)?)
        })?;
        Ok(Leadership::granted(partition, holder, epoch, asked, ttl))
    }

    async fn renew(&self, lease: &Leadership, ttl: Duration) -> Result<Leadership, LogError> {
        let asked = Instant::now();
        let p = lease.partition;
        self.write(p, Probe::Meta, |_, meta| {
            Ok(meta.lease.renew(p, lease.epoch, now_ms(), ttl)?)
        })?;
        Ok(lease.renewed(asked, ttl))
    }

    async fn step_down(&self, lease: &Leadership) -> Result<(), LogError> {
        let p = lease.partition;
        self.write(p, Probe::Meta, |_, meta| {
            Ok(meta.lease.step_down(p, lease.epoch)?)
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
        self.write(partition, Probe::End { start }, |tx, meta| {
            meta.lease.check(partition, epoch)?;
            let mut table = tx.open_table(ENTRIES)?;
            bounds_in(&table, partition, meta.first)?.expect_end(partition, start)?;
            for (frame, offset) in frames.iter().zip(start..) {
                table.insert((partition, offset), frame.as_slice())?;
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
        self.with_db(|db| {
            let tx = db.begin_read()?;
            let meta = meta_in(&tx.open_table(META)?, partition)?;
            let table = tx.open_table(ENTRIES)?;
            let bounds = bounds_in(&table, partition, meta.first)?;
            bounds.expect_live(partition, from)?;
            if from >= bounds.end {
                return Ok(Vec::new());
            }
            let range = table.range((partition, from)..(partition, bounds.end))?;
            let mut records = Vec::with_capacity(max.min((bounds.end - from) as usize));
            for (item, expected) in range.take(max).zip(from..) {
                let (key, frame) = item?;
                let offset = key.value().1;
                if offset != expected {
                    let missing = Corruption::Missing { end: offset };
                    let record = RecordRef::Entry(expected);
                    return Err(LogError::corrupt(partition, record, missing).into());
                }
                records.push(decode_entry(partition, offset, frame.value())?);
            }
            Ok(records)
        })
        .map_err(|failure| self.read_error(partition, failure))
    }

    async fn bounds(&self, partition: Partition) -> Result<Bounds, LogError> {
        self.with_db(|db| {
            let tx = db.begin_read()?;
            let meta = meta_in(&tx.open_table(META)?, partition)?;
            bounds_in(&tx.open_table(ENTRIES)?, partition, meta.first)
        })
        .map_err(|failure| self.read_error(partition, failure))
    }

    async fn store_snapshot(
        &self,
        partition: Partition,
        epoch: Epoch,
        snapshot: &Snapshot,
    ) -> Result<(), LogError> {
        let frame = encode_snapshot(snapshot);
        // The snapshot and the log's new start are stored in one transaction with the
        // first chunk of the trim; entries before the start are never read again,
        // whichever transaction removes them.
        let mut more = self.write(partition, Probe::Snapshot(snapshot), |tx, meta| {
            meta.lease.check(partition, epoch)?;
            let mut entries = tx.open_table(ENTRIES)?;
            bounds_in(&entries, partition, meta.first)?
                .expect_snapshot(partition, snapshot.offset)?;
            tx.open_table(SNAPSHOTS)?
                .insert(partition, frame.as_slice())?;
            meta.first = snapshot.offset;
            trim::trim_chunk(&mut entries, partition, snapshot.offset)
        })?;
        while more {
            more = self.write(partition, Probe::Meta, |tx, meta| {
                let mut entries = tx.open_table(ENTRIES)?;
                trim::trim_chunk(&mut entries, partition, meta.first)
            })?;
        }
        Ok(())
    }

    async fn load_snapshot(&self, partition: Partition) -> Result<Option<Snapshot>, LogError> {
        self.with_db(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(SNAPSHOTS)?;
            let stored = table.get(partition)?;
            Ok(stored
                .map(|frame| decode_snapshot(partition, frame.value()))
                .transpose()?)
        })
        .map_err(|failure| self.read_error(partition, failure))
    }
}
