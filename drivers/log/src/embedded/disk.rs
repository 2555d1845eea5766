//! The file under the redb log, seen through redb's `StorageBackend`: every call goes to
//! redb's own file backend, and the outcome is noted, so a failed transaction can be
//! told apart as a full disk (or quota) even where redb reports only that an earlier
//! I/O error happened. [`DiskFaults`] makes the same backend run out of space on demand,
//! so tests of a full disk run anywhere, without mounting a small filesystem.

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};
use std::fs::File;
use std::io;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// What the backend saw since the log last asked.
#[derive(Debug, Default)]
pub(crate) struct DiskState {
    no_space: AtomicBool,
    syncs: AtomicU64,
}

impl DiskState {
    /// Whether a call failed for lack of space since the last call of this.
    pub(super) fn take_no_space(&self) -> bool {
        self.no_space.swap(false, Ordering::AcqRel)
    }

    /// Syncs that succeeded so far. A two-phase commit makes its new state current only
    /// after its first sync succeeded, so a commit that failed before any sync of its
    /// own changed nothing.
    pub(super) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Acquire)
    }
}

/// Simulated space on the disk under a [`RedbLog`](crate::RedbLog), for tests of what a
/// caller does when the disk fills up. Clones share one disk; unlimited until told.
#[derive(Clone, Debug)]
pub struct DiskFaults(Arc<Faults>);

/// The disk is modelled as a filesystem that allocates blocks when they are first
/// written: writes within the part of the file already written cost nothing, writes
/// beyond it cost what they add, and a sync may fail as one that allocates on writeback.
#[derive(Debug)]
struct Faults {
    /// Bytes that may still be allocated; `u64::MAX` is unlimited.
    space: AtomicU64,
    /// How far the file has been written (every byte below is allocated).
    allocated: AtomicU64,
    /// Syncs that succeed before the next one fails; `u64::MAX` never fails.
    syncs_left: AtomicU64,
    /// Every write fails, even within the space the file already has.
    full: AtomicBool,
    refused: AtomicU64,
}

impl Default for DiskFaults {
    fn default() -> Self {
        DiskFaults(Arc::new(Faults {
            space: AtomicU64::new(u64::MAX),
            allocated: AtomicU64::new(0),
            syncs_left: AtomicU64::new(u64::MAX),
            full: AtomicBool::new(false),
            refused: AtomicU64::new(0),
        }))
    }
}

impl DiskFaults {
    /// A disk with unlimited space.
    pub fn new() -> DiskFaults {
        DiskFaults::default()
    }

    /// From now on, writes that need new space fail with "no space left on device" once
    /// `bytes` more bytes were allocated (0: the next one fails).
    pub fn set_space_left(&self, bytes: u64) {
        self.0.space.store(bytes, Ordering::Release);
    }

    /// Every write fails from now on, even over space the file already has, as on a
    /// full copy-on-write filesystem.
    pub fn fill_completely(&self) {
        self.0.full.store(true, Ordering::Release);
    }

    /// Space is unlimited again and syncs succeed, as after an operator freed space.
    pub fn free_space(&self) {
        self.set_space_left(u64::MAX);
        self.0.full.store(false, Ordering::Release);
        self.0.syncs_left.store(u64::MAX, Ordering::Release);
    }

    /// After `n` more successful syncs, one sync fails with "no space left on device"
    /// although the writes before it succeeded, as a filesystem that allocates on
    /// writeback reports a full disk.
    pub fn fail_sync_after(&self, n: u64) {
        self.0.syncs_left.store(n, Ordering::Release);
    }

    /// Writes and syncs refused so far.
    pub fn refused(&self) -> u64 {
        self.0.refused.load(Ordering::Acquire)
    }

    /// Notes that the file already holds `len` bytes.
    fn opened(&self, len: u64) {
        self.0.allocated.fetch_max(len, Ordering::AcqRel);
    }

    /// Allocates what a write of `len` bytes at `offset` adds to the file.
    fn charge(&self, offset: u64, len: u64) -> io::Result<()> {
        if self.0.full.load(Ordering::Acquire) {
            return Err(self.refuse());
        }
        let end = offset.saturating_add(len);
        let grows = end.saturating_sub(self.0.allocated.load(Ordering::Acquire));
        let charged = self
            .0
            .space
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                if left == u64::MAX {
                    Some(left)
                } else {
                    left.checked_sub(grows)
                }
            });
        if charged.is_err() {
            return Err(self.refuse());
        }
        self.0.allocated.fetch_max(end, Ordering::AcqRel);
        Ok(())
    }

    fn check_sync(&self) -> io::Result<()> {
        let left = self
            .0
            .syncs_left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                Some(match left {
                    u64::MAX => u64::MAX,
                    // This sync fails; the ones after it succeed again.
                    0 => u64::MAX,
                    n => n - 1,
                })
            });
        match left {
            Ok(0) => Err(self.refuse()),
            _ => Ok(()),
        }
    }

    fn refuse(&self) -> io::Error {
        self.0.refused.fetch_add(1, Ordering::AcqRel);
        io::Error::new(
            io::ErrorKind::StorageFull,
            "no space left on device (simulated)",
        )
    }
}

/// Whether an I/O error means the disk (or the user's quota) is full.
pub(crate) fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

#[derive(Debug)]
pub(crate) struct Disk {
    file: FileBackend,
    state: Arc<DiskState>,
    faults: Option<DiskFaults>,
}

impl Disk {
    pub(super) fn new(
        file: File,
        state: Arc<DiskState>,
        faults: Option<DiskFaults>,
    ) -> io::Result<Disk> {
        if let Some(faults) = &faults {
            faults.opened(file.metadata()?.len());
        }
        let file = FileBackend::new(file).map_err(io::Error::other)?;
        Ok(Disk {
            file,
            state,
            faults,
        })
    }

    fn note<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            if is_no_space(e) {
                self.state.no_space.store(true, Ordering::Release);
            }
        }
        result
    }
}

impl StorageBackend for Disk {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.note(self.file.set_len(len))
    }

    fn sync_data(&self) -> io::Result<()> {
        let checked = match &self.faults {
            Some(faults) => faults.check_sync(),
            None => Ok(()),
        };
        let synced = self.note(checked.and_then(|()| self.file.sync_data()));
        if synced.is_ok() {
            self.state.syncs.fetch_add(1, Ordering::AcqRel);
        }
        synced
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let charged = match &self.faults {
            Some(faults) => faults.charge(offset, data.len() as u64),
            None => Ok(()),
        };
        self.note(charged.and_then(|()| self.file.write(offset, data)))
    }

    fn close(&self) -> io::Result<()> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A real "no space left on device" from the kernel is recognised as a full disk.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_s_enospc_is_a_full_disk() {
        let mut full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full exists on Linux");
        let err = full
            .write_all(&[0; 4096])
            .and_then(|()| full.flush())
            .expect_err("/dev/full refuses writes");
        assert!(is_no_space(&err), "{err:?}");
        assert!(!is_no_space(&io::Error::from(
            io::ErrorKind::PermissionDenied
        )));
    }

    #[test]
    fn simulated_space_counts_only_what_grows_the_file() {
        let faults = DiskFaults::new();
        faults.opened(8192);
        faults.set_space_left(100);
        assert!(faults.charge(0, 8192).is_ok(), "overwrites are free");
        assert!(faults.charge(8192, 100).is_ok());
        assert!(faults.charge(8292, 1).is_err());
        assert!(faults.charge(0, 10).is_ok());
        faults.fill_completely();
        assert!(faults.charge(0, 10).is_err());
        faults.fail_sync_after(1);
        assert!(faults.check_sync().is_ok());
        assert!(faults.check_sync().is_err());
        assert!(faults.check_sync().is_ok(), "one sync fails, not every one");
        assert_eq!(faults.refused(), 3);
        faults.free_space();
        assert!(faults.charge(1 << 40, 1 << 30).is_ok());
    }
}
