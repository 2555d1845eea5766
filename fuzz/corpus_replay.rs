//! Replaying a fuzz target's checked-in corpus in `cargo test`, shared by the crates
//! whose `tests/fuzz_replay.rs` include this file: every corpus file must pass the
//! target's checks without panicking.

use std::path::{Path, PathBuf};

/// The repository's `fuzz/` directory, found upwards from the including crate.
pub(crate) fn fuzz_dir() -> PathBuf {
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .map(|dir| dir.join("fuzz"))
        .find(|dir| dir.join("corpus").is_dir())
        .unwrap_or_else(|| panic!("no fuzz/corpus above {}", start.display()))
}

/// Every file of `fuzz/corpus/<target>/`, by name, in name order.
pub(crate) fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&p).expect("corpus file reads"))
        })
        .collect()
}

/// Runs `check` on every corpus file of `target`, which must hold at least `at_least`.
pub(crate) fn replay(target: &str, at_least: usize, check: impl Fn(&[u8])) {
    let files = corpus(target);
    assert!(
        files.len() >= at_least,
        "corpus {target} has {} files",
        files.len()
    );
    for (name, bytes) in files {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&bytes)));
        assert!(
            outcome.is_ok(),
            "corpus file {name} fails the {target} checks"
        );
    }
}
