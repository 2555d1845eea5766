//! What a `keel worker` keeps on the local disk, per worker id, in its state directory
//! (`--state-dir`): two lock files and a directory of payload files.
//!
//! - `<id>.worker.lock` is held by the live worker process itself, so a second worker
//!   started with the same id on this host is refused instead of replacing the first.
//! - `<id>.commands.lock` is held by the worker's reaper ([`crate::reaper`]) from before
//!   the worker registers until every command the worker started is dead, even when
//!   the worker itself was killed. A restarted worker waits for it before registering,
//!   so the coordinator cannot grant it a task while an attempt of its previous
//!   instance may still run.
//! - `<id>.payloads/` holds each running task's payload as a file
//!   (`KEEL_PAYLOAD_FILE`), its inputs directory (`KEEL_INPUTS_DIR`) and its signal
//!   payload (`KEEL_SIGNAL_FILE`); what a killed worker left there is removed by its
//!   reaper.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Longest file name stem kept as is; longer ids are cut and suffixed with a hash, so
/// every name fits in a file name (255 bytes).
const MAX_STEM: usize = 120;

/// The files of one worker id.
#[derive(Clone, Debug)]
pub struct WorkerFiles {
    pub worker_lock: PathBuf,
    pub commands_lock: PathBuf,
    pub payloads: PathBuf,
}

impl WorkerFiles {
    pub fn new(state_dir: &Path, worker_id: &str) -> WorkerFiles {
        let stem = file_stem(worker_id);
        WorkerFiles {
            worker_lock: state_dir.join(format!("{stem}.worker.lock")),
            commands_lock: state_dir.join(format!("{stem}.commands.lock")),
            payloads: state_dir.join(format!("{stem}.payloads")),
        }
    }

    /// Removes the files, once no process will use them again (the payload directory
    /// only if empty).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.worker_lock);
        let _ = std::fs::remove_file(&self.commands_lock);
        let _ = std::fs::remove_dir(&self.payloads);
    }
}

/// The state directory: `flag` if given, else `$XDG_RUNTIME_DIR/keel`, else
/// `<temp dir>/keel-<uid>`. Made (mode 0700) if missing. A directory another user owns
/// or may write to is refused: its lock files and payloads would be theirs to take.
pub fn state_dir(flag: Option<&Path>) -> Result<PathBuf, String> {
    let dir = match flag {
        Some(dir) => dir.to_owned(),
        None => match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            Some(runtime) => PathBuf::from(runtime).join("keel"),
            // SAFETY: geteuid cannot fail and touches no memory.
            None => std::env::temp_dir().join(format!("keel-{}", unsafe { libc::geteuid() })),
        },
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("making the state directory {}: {e}", dir.display()))?;
    let meta = std::fs::metadata(&dir)
        .map_err(|e| format!("the state directory {}: {e}", dir.display()))?;
    // SAFETY: as above.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "the state directory {} must be a directory owned by uid {me} that no one else \
             may write to; choose another with --state-dir",
            dir.display()
        ));
    }
    Ok(dir)
}

/// Takes the exclusive lock on `path` without waiting; `Ok(None)` when another process
/// holds it. The lock lasts as long as the returned file is open.
pub fn try_lock(path: &Path) -> Result<Option<File>, String> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    // SAFETY: flock takes a descriptor we own for the duration of the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(Some(file));
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        return Ok(None);
    }
    Err(format!("locking {}: {e}", path.display()))
}

/// Takes the exclusive lock on `path`, waiting while another process holds it.
pub fn lock(path: &Path) -> Result<File, String> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    loop {
        // SAFETY: as in `try_lock`.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(file);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("locking {}: {e}", path.display()));
        }
    }
}

/// How every payload file's name starts; nothing else in a payload directory is removed
/// but inputs directories.
pub const PAYLOAD_PREFIX: &str = "payload-";
/// How every per-attempt inputs directory's name starts.
pub const INPUTS_PREFIX: &str = "inputs-";

/// Removes the payload files and inputs directories in `dir` (of commands known to be
/// dead); makes `dir`.
pub fn clear_payloads(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("making {}: {e}", dir.display()))?;
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PAYLOAD_PREFIX) {
            let _ = std::fs::remove_file(entry.path());
        } else if name.starts_with(INPUTS_PREFIX) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// A file name stem for `worker_id`: letters, digits, `.`, `_` and `-` kept, every other
/// byte as `%XX`, a leading `.` escaped too; long stems cut and suffixed with a hash of
/// the whole id, so distinct ids get distinct names.
pub fn file_stem(worker_id: &str) -> String {
    let mut stem = String::new();
    for (i, b) in worker_id.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if plain {
            stem.push(char::from(b));
        } else {
            stem.push_str(&format!("%{b:02X}"));
        }
    }
    if stem.is_empty() {
        stem.push('%');
    }
    if stem.len() > MAX_STEM {
        let hash = worker_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        stem.truncate(MAX_STEM - 17);
        stem.push_str(&format!("-{hash:016x}"));
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_ids_become_safe_distinct_file_names() {
        assert_eq!(file_stem("host-12"), "host-12");
        assert_eq!(file_stem("a/b"), "a%2Fb");
        assert_eq!(file_stem(".."), "%2E.");
        assert_eq!(file_stem(""), "%");
        assert_eq!(file_stem("é"), "%C3%A9");
        let long_a = file_stem(&"a".repeat(300));
        let long_b = file_stem(&format!("{}b", "a".repeat(299)));
        assert_eq!(long_a.len(), MAX_STEM);
        assert_ne!(long_a, long_b);
    }

    #[test]
    fn a_held_lock_is_reported_busy_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = try_lock(&path).unwrap().expect("free at first");
        assert!(try_lock(&path).unwrap().is_none());
        drop(held);
        assert!(try_lock(&path).unwrap().is_some());
    }

    #[test]
    fn a_directory_others_may_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = state_dir(Some(&shared)).unwrap_err();
        assert!(e.contains("no one else may write"), "{e}");
        assert_eq!(
            state_dir(Some(&dir.path().join("new"))).unwrap(),
            dir.path().join("new")
        );
    }

    #[test]
    fn clearing_payloads_removes_payload_files_and_inputs_directories_only() {
        let dir = tempfile::tempdir().unwrap();
        let payloads = dir.path().join("w.payloads");
        clear_payloads(&payloads).unwrap();
        std::fs::write(payloads.join("payload-abc"), "x").unwrap();
        std::fs::write(payloads.join("notes"), "keep").unwrap();
        std::fs::create_dir(payloads.join("inputs-abc")).unwrap();
        std::fs::write(payloads.join("inputs-abc").join("up"), "x").unwrap();
        clear_payloads(&payloads).unwrap();
        assert!(!payloads.join("payload-abc").exists());
        assert!(!payloads.join("inputs-abc").exists());
        assert!(payloads.join("notes").exists());
    }
}
