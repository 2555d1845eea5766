//! keel-log: the durable log the coordinator appends the engine's inputs to before it
//! releases their replies, so its state survives crashes of the coordinator and of its
//! storage.
//!
//! - [`Log`] is the contract: per partition, fenced leadership ([`Log::acquire`],
//!   [`Log::renew`], [`Log::step_down`]), atomic batch appends under the leader's epoch,
//!   reads, and one snapshot whose storing trims the entries it covers.
//! - [`MemoryLog`] keeps everything in memory, for tests and the simulator.
//! - [`RedbLog`] is the embedded default: one redb file under a data directory, fsynced
//!   on every write. `keel serve` uses it when no Valkey URL is given. The file is in
//!   redb's format v3 ([`CURRENT_FORMAT`]); a file written by an older keel-log (redb 2,
//!   format v2) is upgraded when it is opened, and the original is kept beside it with
//!   the suffix [`BACKUP_SUFFIX`] until the operator deletes it. Any other format is
//!   refused with an error naming the version found. Opening checks every page of the
//!   file and refuses a damaged, emptied or deleted log with an [`OpenError`] naming the
//!   file: a data directory remembers that it held a log ([`MARKER_NAME`]), so a lost
//!   log never passes for a new one unless the caller asks for a new one
//!   ([`RedbOptions::init`], `keel serve --init`).
//! - `keel-valkey` implements the same contract on Valkey and Valkey Cluster.
//! - `conformance` (feature `conformance`) is the test suite every backend passes.
//!
//! Recovery ([`recover`]) restores the newest snapshot, checks it against the digest
//! stored with it, and replays the [`Entry`]s after it through the engine.
//!
//! ```
//! use keel_log::{recover, snapshot_of, Entry, Log, RedbLog};
//! use keel_engine::{Config, Input};
//! use std::time::Duration;
//! # let dir = tempfile::tempdir().unwrap();
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let log = RedbLog::open(dir.path())?; // <data dir>/keel-log.redb
//! let lease = log.acquire(0, "coordinator-a", Duration::from_secs(10)).await?;
//! let mut recovered = recover(&log, 0, Config::default()).await?;
//! let entry = Entry::new(5, Input::Tick);
//! recovered.engine.apply(entry.now, entry.input.clone());
//! let end = log.append(0, lease.epoch, recovered.next, &[entry.encode()]).await?;
//! log.store_snapshot(0, lease.epoch, &snapshot_of(&recovered.engine, end)).await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! Every stored record carries a format version and a CRC-32 ([`record`]); a damaged
//! record stops a reader with [`LogError::Corrupt`] naming the store, the partition and
//! the record. Entry frames also record where their append ended, so a batch whose tail
//! is gone is found ([`scan`]). Nothing is ever skipped, and recovery never starts from
//! less than the log held.
//!
//! Failures are classified for the caller ([`LogError::kind`], [`LogError::outcome`]):
//! deposed, unavailable (retry later), out of space, corrupt; the [`Log`] trait's
//! documentation says how to react to each.

pub mod batch_frame;
mod embedded;
mod entry;
pub mod error;
mod leadership;
mod log;
mod memory;
pub mod record;
mod recover;
mod scan;
mod upgrade;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use embedded::{DiskFaults, OpenError, RedbLog, RedbOptions, FILE_NAME, MARKER_NAME};
pub use entry::{Entry, ENTRY_VERSION};
pub use error::{Corruption, ErrorKind, LogError, Outcome, RecordRef};
pub use leadership::LeadershipState;
pub use log::{Bounds, Epoch, Leadership, Log, Offset, Partition, Record, Snapshot};
pub use memory::MemoryLog;
pub use recover::{
    append_entries, recover, restore, snapshot_of, starting_point, RecoverError, Recovered,
};
pub use scan::{scan, SCAN_CHUNK};
pub use upgrade::{BACKUP_SUFFIX, CURRENT_FORMAT};
