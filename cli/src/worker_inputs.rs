//! A command's inputs as files: each upstream task's output in a per-attempt directory
//! (`$KEEL_INPUTS_DIR/<key>`; an absent input has no file), and the payload of the
//! signal that resumed the task in its own file (`$KEEL_SIGNAL_FILE`). Both go when the
//! attempt ends, and a killed worker's are removed by its reaper.

use crate::worker_state::{INPUTS_PREFIX, PAYLOAD_PREFIX};
use keel_grpc::worker::Task;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The files of one attempt; removed when dropped.
pub struct AttemptFiles {
    inputs: tempfile::TempDir,
    signal: Option<tempfile::NamedTempFile>,
}

impl AttemptFiles {
    pub fn inputs_dir(&self) -> &Path {
        self.inputs.path()
    }

    pub fn signal_file(&self) -> Option<PathBuf> {
        self.signal.as_ref().map(|f| f.path().to_path_buf())
    }
}

/// Why an attempt's files could not be written.
#[derive(Debug, PartialEq, Eq)]
pub enum FilesError {
    /// A key that cannot name a file inside the directory; writing it again cannot
    /// help, so the attempt fails for good.
    UnsafeKey(String),
    Io(String),
}

impl std::fmt::Display for FilesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilesError::UnsafeKey(key) => write!(
                f,
                "upstream task key {key:?} cannot be a file name in $KEEL_INPUTS_DIR (it is empty, contains '/' or '..'); rename the task"
            ),
            FilesError::Io(e) => f.write_str(e),
        }
    }
}

/// Whether `key` names a file directly inside a directory, whatever it holds.
fn safe_file_name(key: &str) -> bool {
    !key.is_empty()
        && key != "."
        && !key.contains('/')
        && !key.contains("..")
        && !key.contains('\0')
}

/// Writes `task`'s inputs and signal payload under `dir` (the worker's payload
/// directory). Every key is checked before anything is written.
pub fn write(dir: &Path, task: &Task) -> Result<AttemptFiles, FilesError> {
    if let Some(bad) = task.inputs().iter().find(|i| !safe_file_name(&i.key)) {
        return Err(FilesError::UnsafeKey(bad.key.clone()));
    }
    let io = |what: &str, e: std::io::Error| FilesError::Io(format!("writing {what}: {e}"));
    let inputs = tempfile::Builder::new()
        .prefix(INPUTS_PREFIX)
        .tempdir_in(dir)
        .map_err(|e| io(&format!("an inputs directory in {}", dir.display()), e))?;
    for input in task.inputs() {
        let Some(output) = &input.output else {
            continue;
        };
        let path = inputs.path().join(&input.key);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(output.as_bytes()));
        written.map_err(|e| io(&path.display().to_string(), e))?;
    }
    let signal = match task.signal_payload() {
        Some(bytes) => Some(signal_file(dir, bytes).map_err(|e| io("the signal file", e))?),
        None => None,
    };
    Ok(AttemptFiles { inputs, signal })
}

fn signal_file(dir: &Path, bytes: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix(&format!("{PAYLOAD_PREFIX}signal-"))
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.flush()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_leave_the_directory_are_refused() {
        for bad in ["", ".", "..", "../x", "a/b", "/etc", "a..b", "x/..", "a\0b"] {
            assert!(!safe_file_name(bad), "{bad:?}");
        }
        for good in ["a", "map-1", ".hidden", "a.b", "count.txt", "é"] {
            assert!(safe_file_name(good), "{good:?}");
        }
        let e = FilesError::UnsafeKey("../x".into()).to_string();
        assert!(
            e.starts_with("upstream task key \"../x\" cannot be a file name"),
            "{e}"
        );
    }
}
