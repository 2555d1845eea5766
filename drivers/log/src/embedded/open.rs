//! Opening the log file of a data directory, and the rule that keeps a lost log from
//! passing for a new one.
//!
//! The rule is documented on [`RedbLog::open`](crate::RedbLog::open).

use super::disk::{is_no_space, Disk, DiskFaults, DiskState};
use super::failure::{contain, Failure};
use crate::upgrade::{upgrade_v2, CURRENT_FORMAT};
use redb::{Builder, Database};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file name of the log inside a data directory.
pub const FILE_NAME: &str = "keel-log.redb";
/// The file whose presence says a data directory has held a log.
pub const MARKER_NAME: &str = "keel-log.created";

/// How [`RedbLog::open_with`](crate::RedbLog::open_with) treats the data directory.
#[derive(Clone, Debug, Default)]
pub struct RedbOptions {
    /// Replace a missing or empty log with a new, empty one instead of refusing to start
    /// (`keel serve --init`). A log that holds anything is never replaced.
    pub init: bool,
    /// Trust a file that redb shut down cleanly instead of checking every page of it
    /// when it is opened: faster for a large log, but a file damaged while it was closed
    /// may then make redb panic part way through a read, which the log reports as
    /// damage ([`crate::LogError::Damaged`]) instead of the open refusing it.
    pub skip_verification: bool,
    /// Simulated disk space, for tests.
    pub faults: Option<DiskFaults>,
}

/// Why the log of a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The log file is gone from a directory that held one.
    #[error("{} is missing, but {} says this directory held a log; restore the log file, or start a new, empty log with --init (every job in the lost log is gone)", .path.display(), .marker.display())]
    Missing {
        /// The log file expected.
        path: PathBuf,
        /// The marker file that says a log existed.
        marker: PathBuf,
    },
    /// The log file is empty (0 bytes).
    #[error("{} is empty (0 bytes): the log it held is gone; restore it from a backup, or start a new, empty log with --init (every job in the lost log is gone)", .path.display())]
    Empty {
        /// The empty file.
        path: PathBuf,
    },
    /// The file fails redb's checks (pages, checksums, layout), or redb panicked on it.
    #[error("{} is damaged: {problem}; move it aside and restore a backup, or start a new, empty log with --init (every job in the damaged log is gone)", .path.display())]
    Damaged {
        /// The damaged file.
        path: PathBuf,
        /// What redb reported.
        problem: String,
    },
    /// The file is in a redb format this build neither reads nor upgrades.
    #[error("{} is in redb file format v{found}, which this build cannot read (it reads v{CURRENT_FORMAT} and upgrades v2)", .path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// The format version in its header.
        found: u8,
    },
    /// The file is in redb's format v2 and could not be upgraded; it is unchanged.
    #[error("{} is in redb file format v2 (keel-log on redb 2) and upgrading it failed: {reason}", .path.display())]
    Upgrade {
        /// The file, left as it was.
        path: PathBuf,
        /// Why the upgrade failed.
        reason: String,
    },
    /// Another process has the file open.
    #[error("{} is open in another process", .path.display())]
    InUse {
        /// The locked file.
        path: PathBuf,
    },
    /// The disk is full; opening needs to write.
    #[error("{}: not durable: no space left on the device; free space and start again", .path.display())]
    NoSpace {
        /// The file being opened.
        path: PathBuf,
    },
    /// Any other failure to read or create the file.
    #[error("{}: {message}", .path.display())]
    Io {
        /// The file being opened.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
}

/// An open database and what opening it did.
pub(crate) struct Opened {
    pub db: Database,
    /// Where the original of an upgraded file was kept.
    pub backup: Option<PathBuf>,
}

/// Opens or creates the log in `dir` by the rule in this module's documentation.
pub(crate) fn open_dir(
    dir: &Path,
    options: &RedbOptions,
    state: &Arc<DiskState>,
) -> Result<Opened, OpenError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let path = dir.join(FILE_NAME);
    let marker = dir.join(MARKER_NAME);
    let len = match std::fs::metadata(&path) {
        Ok(meta) => Some(meta.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&path, e)),
    };
    match len {
        Some(0) if !options.init => return Err(OpenError::Empty { path }),
        None if marker.exists() && !options.init => {
            return Err(OpenError::Missing { path, marker })
        }
        Some(0) | None => create(&path, options, state)?,
        Some(_) => {}
    }
    let opened = open_existing(&path, options, state)?;
    if !marker.exists() {
        write_marker(&marker)?;
    }
    Ok(opened)
}

/// Opens an existing, non-empty log file, checking every page of it, and upgrades it
/// first if it is in redb's file format v2.
pub(crate) fn open_existing(
    path: &Path,
    options: &RedbOptions,
    state: &Arc<DiskState>,
) -> Result<Opened, OpenError> {
    match open_db(path, options, state) {
        Err(Failure::Redb(redb::Error::UpgradeRequired(2))) => {
            let backup = upgrade_v2(path).map_err(|reason| OpenError::Upgrade {
                path: path.to_owned(),
                reason,
            })?;
            let db = open_db(path, options, state).map_err(|e| open_error(path, e, state))?;
            Ok(Opened {
                db,
                backup: Some(backup),
            })
        }
        Ok(db) => Ok(Opened { db, backup: None }),
        Err(e) => Err(open_error(path, e, state)),
    }
}

fn open_db(
    path: &Path,
    options: &RedbOptions,
    state: &Arc<DiskState>,
) -> Result<Database, Failure> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Failure::Redb(e.into()))?;
    let disk = Disk::new(file, state.clone(), options.faults.clone())
        .map_err(|e| Failure::Redb(e.into()))?;
    contain(|| {
        let db = Builder::new()
            .set_check_integrity_on_open(!options.skip_verification)
            .create_with_backend(disk)?;
        super::create_tables(&db)?;
        Ok(db)
    })
}

/// Builds a new, empty log next to `path` and renames it into place, so a crash leaves
/// either no log or a complete one.
fn create(path: &Path, options: &RedbOptions, state: &Arc<DiskState>) -> Result<(), OpenError> {
    let mut fresh = path.as_os_str().to_owned();
    fresh.push(".new");
    let fresh = PathBuf::from(fresh);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&fresh)
        .map_err(|e| io(&fresh, e))?;
    let disk = Disk::new(file, state.clone(), options.faults.clone()).map_err(|e| io(&fresh, e))?;
    contain(|| {
        let db = Builder::new().create_with_backend(disk)?;
        super::create_tables(&db)?;
        Ok(())
    })
    .map_err(|e| open_error(&fresh, e, state))?;
    std::fs::rename(&fresh, path).map_err(|e| io(path, e))?;
    if let Some(dir) = path.parent() {
        crate::upgrade::sync_dir(dir);
    }
    Ok(())
}

fn write_marker(marker: &Path) -> Result<(), OpenError> {
    let text = format!(
        "This directory holds a keel log ({FILE_NAME}). keel serve refuses to start if that \
         file goes missing or is emptied; `keel serve --init` starts a new, empty log.\n"
    );
    let mut fresh = marker.as_os_str().to_owned();
    fresh.push(".new");
    let fresh = PathBuf::from(fresh);
    std::fs::write(&fresh, text)
        .and_then(|()| std::fs::File::open(&fresh)?.sync_all())
        .and_then(|()| std::fs::rename(&fresh, marker))
        .map_err(|e| io(marker, e))?;
    if let Some(dir) = marker.parent() {
        crate::upgrade::sync_dir(dir);
    }
    Ok(())
}

fn open_error(path: &Path, failure: Failure, state: &DiskState) -> OpenError {
    let path = path.to_owned();
    let no_space = state.take_no_space();
    match failure {
        Failure::Reopen(e) => e,
        Failure::Log(e) => OpenError::Io {
            path,
            message: e.to_string(),
        },
        Failure::Panic(message) => OpenError::Damaged {
            path,
            problem: format!("redb panicked reading it: {message}"),
        },
        Failure::Redb(e) => match e {
            redb::Error::UpgradeRequired(found) => OpenError::Format { path, found },
            redb::Error::DatabaseAlreadyOpen => OpenError::InUse { path },
            redb::Error::Corrupted(problem) => OpenError::Damaged { path, problem },
            redb::Error::Io(e) if no_space || is_no_space(&e) => OpenError::NoSpace { path },
            redb::Error::Io(e) if damage(&e) => OpenError::Damaged {
                path,
                problem: e.to_string(),
            },
            redb::Error::PreviousIo if no_space => OpenError::NoSpace { path },
            other => OpenError::Io {
                path,
                message: other.to_string(),
            },
        },
    }
}

/// I/O errors redb reports for a file whose contents make no sense (cut short, or with
/// lengths pointing past its end).
fn damage(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
    )
}

fn io(path: &Path, e: std::io::Error) -> OpenError {
    if is_no_space(&e) {
        return OpenError::NoSpace {
            path: path.to_owned(),
        };
    }
    OpenError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    }
}
