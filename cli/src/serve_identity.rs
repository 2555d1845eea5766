//! Who a `keel serve` process is to the log's leadership lease. A restart on the same
//! data directory must take its partition back at once rather than wait for its own
//! old lease to lapse, while two servers on different directories stay distinct, so a
//! standby still waits. The directory is locked while serving: two processes sharing
//! an identity would fence each other in turn.

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::Path;

const ID_FILE: &str = "coordinator-id";
const LOCK_FILE: &str = "serve.lock";

/// Holds the data directory's lock for as long as it lives.
pub struct DirLock {
    _file: File,
}

/// Locks `dir` (creating it) for this process; refused while another process serves
/// from it.
pub fn lock_dir(dir: &Path) -> Result<DirLock, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    try_lock(&file).map_err(|_| {
        format!(
            "{} is in use by another keel serve; give each server its own --data-dir",
            dir.display()
        )
    })?;
    Ok(DirLock { _file: file })
}

/// An exclusive advisory lock that the kernel drops when the process dies, so a
/// SIGKILLed server's directory is free for its restart.
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function borrows; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<()> {
    Ok(())
}

/// The identity stored in `dir`, created on first use as `keel-serve/<host>/<random>`.
pub fn holder_for(dir: &Path) -> Result<String, String> {
    let path = dir.join(ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            if id.is_empty() {
                return Err(format!(
                    "{} is empty; delete it to make a new one",
                    path.display()
                ));
            }
            Ok(id.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let random = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            let host = keel_coordinator::host_name();
            let id = format!("keel-serve/{host}/{random:016x}");
            let mut file =
                File::create(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
            writeln!(file, "{id}")
                .and_then(|()| file.sync_all())
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            Ok(id)
        }
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = holder_for(dir.path()).unwrap();
        assert!(first.starts_with("keel-serve/"), "{first}");
        assert_eq!(holder_for(dir.path()).unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(holder_for(other.path()).unwrap(), first);
    }

    #[test]
    fn a_locked_directory_is_refused_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let lock = lock_dir(dir.path()).unwrap();
        let err = lock_dir(dir.path()).err().unwrap_or_default();
        assert!(err.contains("in use by another keel serve"), "{err}");
        drop(lock);
        assert!(lock_dir(dir.path()).is_ok());
    }
}
