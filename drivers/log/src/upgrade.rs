//! Logs written before redb 3 use redb's file format v2, which redb 3 and later refuse
//! to open. redb 2.6 can rewrite such a file in format v3 (`Database::upgrade`), so the
//! embedded log carries that one old version of redb for this step alone.
//!
//! The upgrade never touches the original file until the upgraded copy is complete and
//! synced: the file is copied, the copy upgraded, the original kept beside it as
//! [`BACKUP_SUFFIX`], and the copy renamed over the original. A crash at any step leaves
//! either the original v2 file (upgraded again on the next open) or the upgraded one.

use std::fs::File;
use std::path::{Path, PathBuf};

/// Appended to the log's file name for the untouched v2 original kept after an upgrade.
pub const BACKUP_SUFFIX: &str = ".format-v2.bak";
/// Appended to the log's file name for the copy being upgraded.
const WORK_SUFFIX: &str = ".upgrading";

/// The redb file format this build reads and writes.
pub const CURRENT_FORMAT: u8 = 3;

/// Upgrades the format v2 file at `path` to format v3 in place, keeping the original as
/// a backup. Returns the backup's path.
pub(crate) fn upgrade_v2(path: &Path) -> Result<PathBuf, String> {
    let work = with_suffix(path, WORK_SUFFIX);
    let backup = with_suffix(path, BACKUP_SUFFIX);
    std::fs::copy(path, &work).map_err(|e| format!("copying it to {}: {e}", work.display()))?;
    sync(&work)?;
    let upgraded = std::panic::catch_unwind(|| -> Result<bool, String> {
        let mut db = redb2::Database::open(&work).map_err(|e| e.to_string())?;
        db.upgrade().map_err(|e| e.to_string())
    });
    match upgraded {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(abandon(
                &work,
                format!("redb 2.6 could not upgrade it: {e}"),
            ))
        }
        Err(_) => return Err(abandon(&work, "redb 2.6 panicked upgrading it".into())),
    }
    sync(&work)?;
    let _ = std::fs::remove_file(&backup);
    if std::fs::hard_link(path, &backup).is_err() {
        std::fs::copy(path, &backup).map_err(|e| {
            abandon(
                &work,
                format!("keeping the original as {}: {e}", backup.display()),
            )
        })?;
        sync(&backup)?;
    }
    std::fs::rename(&work, path)
        .map_err(|e| abandon(&work, format!("replacing it with the upgraded copy: {e}")))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    Ok(backup)
}

/// Removes the half-upgraded copy; the original is untouched.
fn abandon(work: &Path, why: String) -> String {
    let _ = std::fs::remove_file(work);
    format!("{why}; the original file is unchanged")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn sync(path: &Path) -> Result<(), String> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("syncing {}: {e}", path.display()))
}

/// Makes a rename in `dir` durable. Best effort: not every platform can open a directory.
pub(crate) fn sync_dir(dir: &Path) {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}
