//! Damaged records stop recovery with an error naming the partition and the record, on
//! the in-memory log and on a redb file edited behind the log's back; a damaged redb
//! file (bytes appended, cut short, pages overwritten, emptied, deleted) is refused at
//! open with a typed error naming it, never a panic, and never opens as less than it
//! held.

use keel_engine::{Config, Digest};
use keel_log::conformance::{assert_corrupt, write_history};
use keel_log::{
    recover, Corruption, Log, LogError, MemoryLog, OpenError, RecordRef, RecoverError, RedbLog,
    RedbOptions, FILE_NAME, MARKER_NAME,
};
use redb::{Database, ReadableTable, TableDefinition};
use std::path::Path;
use std::time::Duration;

const P: u32 = 3;
const ENTRIES: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("entries");

async fn history_in<L: Log>(log: &L) -> u64 {
    let lease = log.acquire(P, "a", Duration::from_secs(60)).await.unwrap();
    write_history(log, P, lease.epoch, 4, 0).await.end
}

#[tokio::test]
async fn flipped_byte_in_memory_names_the_entry() {
    let log = MemoryLog::new();
    let end = history_in(&log).await;
    assert!(end > 20);
    assert!(log.tamper(P, 20, |frame| {
        let middle = frame.len() / 2;
        frame[middle] ^= 0x10;
    }));
    let err = recover(&log, P, Config::default()).await.unwrap_err();
    assert_corrupt(&err, P, 20);
    assert!(
        err.to_string()
            .starts_with("memory: partition 3, entry 20: checksum mismatch"),
        "{err}"
    );
}

#[tokio::test]
async fn future_format_version_in_memory_is_refused() {
    let log = MemoryLog::new();
    history_in(&log).await;
    assert!(log.tamper(P, 0, |frame| {
        frame[0] = 3;
        let body = frame.len() - 4;
        let crc = crc32fast::hash(&frame[..body]).to_le_bytes();
        frame[body..].copy_from_slice(&crc);
    }));
    let err = recover(&log, P, Config::default()).await.unwrap_err();
    assert_corrupt(&err, P, 0);
    assert!(
        err.to_string().contains("unknown format version 3"),
        "{err}"
    );
}

fn edit_entries(dir: &std::path::Path, edit: impl FnOnce(&mut redb::Table<(u32, u64), &[u8]>)) {
    let db = Database::create(dir.join(FILE_NAME)).unwrap();
    let tx = db.begin_write().unwrap();
    edit(&mut tx.open_table(ENTRIES).unwrap());
    tx.commit().unwrap();
}

#[tokio::test]
async fn flipped_byte_in_redb_names_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let end = history_in(&RedbLog::open(dir.path()).unwrap()).await;
    edit_entries(dir.path(), |table| {
        let mut frame = table.get((P, 33)).unwrap().unwrap().value().to_vec();
        frame[5] ^= 0x01;
        table.insert((P, 33), frame.as_slice()).unwrap();
    });
    let log = RedbLog::open(dir.path()).unwrap();
    assert_eq!(log.bounds(P).await.unwrap().end, end);
    let err = recover(&log, P, Config::default()).await.unwrap_err();
    assert_corrupt(&err, P, 33);
    let named = format!(
        "{}: partition 3, entry 33: checksum mismatch",
        dir.path().join(FILE_NAME).display()
    );
    assert!(err.to_string().starts_with(&named), "{err}");
}

#[tokio::test]
async fn entry_missing_from_redb_is_reported_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    history_in(&RedbLog::open(dir.path()).unwrap()).await;
    edit_entries(dir.path(), |table| {
        table.remove((P, 12)).unwrap();
    });
    let log = RedbLog::open(dir.path()).unwrap();
    match recover(&log, P, Config::default()).await {
        Err(RecoverError::Log(LogError::Corrupt {
            partition: P,
            record: RecordRef::Entry(12),
            corruption: Corruption::Missing { .. },
            ..
        })) => {}
        other => panic!("a hole in the log must stop recovery: {other:?}"),
    }
}

#[tokio::test]
async fn entry_moved_in_redb_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    history_in(&RedbLog::open(dir.path()).unwrap()).await;
    edit_entries(dir.path(), |table| {
        let frame = table.get((P, 8)).unwrap().unwrap().value().to_vec();
        table.insert((P, 9), frame.as_slice()).unwrap();
    });
    let log = RedbLog::open(dir.path()).unwrap();
    let err = recover(&log, P, Config::default()).await.unwrap_err();
    let named = format!(
        "{}: partition 3, entry 9: record says it is at offset 8",
        dir.path().join(FILE_NAME).display()
    );
    assert!(err.to_string().starts_with(&named), "{err}");
}

/// A redb log with a history and a snapshot, its file's bytes, and what recovering it
/// gives.
struct RealLog {
    dir: tempfile::TempDir,
    bytes: Vec<u8>,
    end: u64,
    digest: Digest,
}

/// The file is copied while the log is still open, as a crash would leave it: its last
/// commit is the last acknowledged append, not a commit made on a clean close.
async fn real_log() -> RealLog {
    let dir = tempfile::tempdir().unwrap();
    let log = RedbLog::open(dir.path()).unwrap();
    let lease = log.acquire(P, "a", Duration::from_secs(60)).await.unwrap();
    let history = write_history(&log, P, lease.epoch, 12, 5).await;
    let (end, digest) = (history.end, history.digest);
    let bytes = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
    drop(log);
    RealLog {
        dir,
        bytes,
        end,
        digest,
    }
}

impl RealLog {
    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join(FILE_NAME)
    }

    /// Replaces the log file with `bytes` and opens it. When it opens, recovery must
    /// either fail with a typed error or give back exactly what was written.
    async fn open_damaged(&self, bytes: &[u8]) -> Result<(), OpenError> {
        self.open_damaged_with(bytes, RedbOptions::default()).await
    }

    async fn open_damaged_with(&self, bytes: &[u8], options: RedbOptions) -> Result<(), OpenError> {
        std::fs::write(self.path(), bytes).unwrap();
        let log = RedbLog::open_with(self.dir.path(), options)?;
        match recover(&log, P, Config::default()).await {
            Ok(recovered) => {
                assert_eq!(
                    recovered.next, self.end,
                    "the log opened as less than it held"
                );
                assert_eq!(recovered.engine.digest(), self.digest);
            }
            Err(e) => assert_typed_recover_error(&e),
        }
        Ok(())
    }
}

fn assert_typed_recover_error(e: &RecoverError) {
    match e {
        RecoverError::Log(e) => assert!(e.is_corrupt(), "{e}"),
        RecoverError::Restore { .. } | RecoverError::DigestMismatch { .. } => {}
        RecoverError::MissingSnapshot { .. } => {}
    }
}

fn assert_damaged(result: Result<(), OpenError>, path: &Path, what: &str) {
    match result {
        Err(e @ OpenError::Damaged { .. }) => {
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("{} is damaged: ", path.display())),
                "{what}: {text}"
            );
            assert!(text.contains("--init"), "{what}: {text}");
        }
        other => panic!("{what}: expected the file to be refused as damaged, got {other:?}"),
    }
}

#[tokio::test]
async fn a_file_cut_short_anywhere_is_refused() {
    let real = real_log().await;
    let len = real.bytes.len();
    for cut in [1, 100, 4095, 4097, len / 2 + 1, len - 1] {
        let result = real.open_damaged(&real.bytes[..cut]).await;
        assert_damaged(result, &real.path(), &format!("cut to {cut} bytes"));
    }
    // Cut at a page boundary, the file may only have lost pages redb had not used yet;
    // then it opens with everything it held (checked by `open_damaged`).
    for cut in [4096, len / 2 / 4096 * 4096, len - 4096] {
        if let Err(e) = real.open_damaged(&real.bytes[..cut]).await {
            assert_damaged(Err(e), &real.path(), &format!("cut to {cut} bytes"));
        }
    }
}

#[tokio::test]
async fn garbage_appended_is_refused_unless_it_only_lengthens_the_file() {
    let real = real_log().await;
    for extra in [1, 100, 4095, 4097] {
        let mut bytes = real.bytes.clone();
        bytes.extend((0..extra).map(|i| (i * 31 + 7) as u8));
        let result = real.open_damaged(&bytes).await;
        assert_damaged(result, &real.path(), &format!("{extra} bytes appended"));
    }
    // Whole pages past the end of redb's layout are space redb has not used yet: the
    // log opens with everything it held, and nothing else.
    for pages in [1, 3] {
        let mut bytes = real.bytes.clone();
        bytes.extend((0..pages * 4096).map(|i| (i * 13 + 1) as u8));
        real.open_damaged(&bytes)
            .await
            .expect("whole pages appended");
    }
}

#[tokio::test]
async fn overwritten_pages_are_refused_or_were_unused() {
    let real = real_log().await;
    let pages = real.bytes.len() / 4096;
    let mut refused = 0;
    for page in 0..pages {
        let mut bytes = real.bytes.clone();
        let mut rng = Rng(page as u64 + 1);
        for b in &mut bytes[page * 4096..(page + 1) * 4096] {
            *b = rng.next() as u8;
        }
        match real.open_damaged(&bytes).await {
            Ok(()) => {}
            Err(e) => {
                assert_damaged(Err(e), &real.path(), &format!("page {page} overwritten"));
                refused += 1;
            }
        }
    }
    assert!(
        refused > 0,
        "no overwritten page was in use ({pages} pages)"
    );
}

/// Many seeded random damages of a real log file: none panics the process, each is
/// either refused with a typed error or harmless, and none opens as less than the log
/// held.
#[tokio::test]
async fn seeded_damage_never_panics_and_never_loses_data_silently() {
    let real = real_log().await;
    let (mut refused, mut harmless) = (0, 0);
    for seed in 1..=300u64 {
        let mut rng = Rng(seed);
        let mut bytes = real.bytes.clone();
        for _ in 0..1 + rng.below(3) {
            damage(&mut bytes, &mut rng);
        }
        match real.open_damaged(&bytes).await {
            Ok(()) => harmless += 1,
            Err(OpenError::Damaged { path, .. } | OpenError::Format { path, .. }) => {
                assert_eq!(path, real.path(), "seed {seed}");
                refused += 1;
            }
            Err(e) => panic!("seed {seed}: not refused as damage: {e}"),
        }
    }
    assert!(
        refused > 100 && harmless > 0,
        "{refused} refused, {harmless} harmless"
    );
}

/// One random damage: flipped bytes, an overwritten range, a cut, or bytes appended.
fn damage(bytes: &mut Vec<u8>, rng: &mut Rng) {
    let len = bytes.len() as u64;
    match rng.below(4) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(len) as usize;
                bytes[at] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let at = rng.below(len) as usize;
            let n = (1 + rng.below(8192) as usize).min(bytes.len() - at);
            for b in &mut bytes[at..at + n] {
                *b = rng.next() as u8;
            }
        }
        2 => bytes.truncate(rng.below(len) as usize),
        _ => bytes.extend((0..1 + rng.below(9000)).map(|_| rng.next() as u8)),
    }
}

/// xorshift64*: enough randomness to pick damages, reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Opened without checking every page, redb trusts a damaged file and panics part way
/// through reads of it; the log contains each panic and reports the file as damaged.
#[tokio::test]
async fn panics_inside_redb_are_contained_and_reported_as_damage() {
    let real = real_log().await;
    let trusting = RedbOptions {
        skip_verification: true,
        ..RedbOptions::default()
    };
    let mut contained = 0;
    for seed in 1..=60u64 {
        let mut rng = Rng(seed);
        let mut bytes = real.bytes.clone();
        let page = 1 + rng.below(bytes.len() as u64 / 4096 - 1) as usize;
        for b in &mut bytes[page * 4096..(page + 1) * 4096] {
            *b = rng.next() as u8;
        }
        std::fs::write(real.path(), &bytes).unwrap();
        let opened = RedbLog::open_with(real.dir.path(), trusting.clone());
        let panicked = match opened {
            Err(e @ OpenError::Damaged { .. }) => e.to_string().contains("redb panicked"),
            Err(e) => panic!("seed {seed}: {e}"),
            Ok(log) => match recover(&log, P, Config::default()).await {
                Err(RecoverError::Log(e @ LogError::Damaged { .. })) => {
                    assert!(e
                        .to_string()
                        .starts_with(&real.path().display().to_string()));
                    e.to_string().contains("redb panicked")
                }
                Err(e) => {
                    assert_typed_recover_error(&e);
                    false
                }
                Ok(recovered) => {
                    assert_eq!(
                        (recovered.next, recovered.engine.digest()),
                        (real.end, real.digest)
                    );
                    false
                }
            },
        };
        contained += usize::from(panicked);
    }
    assert!(
        contained > 0,
        "no damage made redb panic; the containment went untested"
    );
}

#[tokio::test]
async fn an_emptied_log_is_refused_until_init() {
    let real = real_log().await;
    std::fs::write(real.path(), b"").unwrap();
    let err = RedbLog::open(real.dir.path()).err().expect("refused");
    assert!(
        matches!(&err, OpenError::Empty { path } if *path == real.path()),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{} is empty (0 bytes)", real.path().display())),
        "{text}"
    );
    assert!(text.contains("--init"), "{text}");
    let init = RedbOptions {
        init: true,
        ..RedbOptions::default()
    };
    let log = RedbLog::open_with(real.dir.path(), init).expect("--init starts a new log");
    assert_eq!(log.bounds(P).await.unwrap().end, 0);
    drop(log);
    assert!(RedbLog::open(real.dir.path()).is_ok(), "the new log opens");
}

#[tokio::test]
async fn a_missing_log_is_refused_where_one_was_created() {
    let real = real_log().await;
    let marker = real.dir.path().join(MARKER_NAME);
    assert!(marker.exists(), "creating the log wrote the marker");
    std::fs::remove_file(real.path()).unwrap();
    let err = RedbLog::open(real.dir.path()).err().expect("refused");
    assert!(
        matches!(&err, OpenError::Missing { path, marker: m } if *path == real.path() && *m == marker),
        "{err:?}"
    );
    assert!(err.to_string().contains("--init"), "{err}");
    assert!(!real.path().exists(), "refusing created nothing");
    let init = RedbOptions {
        init: true,
        ..RedbOptions::default()
    };
    RedbLog::open_with(real.dir.path(), init).expect("--init starts a new log");
}

#[tokio::test]
async fn a_new_directory_gets_a_log_and_a_marker_without_init() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("new");
    let log = RedbLog::open(&data).expect("a new directory");
    assert_eq!(log.bounds(P).await.unwrap().end, 0);
    assert!(data.join(MARKER_NAME).exists());
    drop(log);
    // A log from before markers existed gets one when it is opened.
    std::fs::remove_file(data.join(MARKER_NAME)).unwrap();
    drop(RedbLog::open(&data).expect("reopens"));
    assert!(data.join(MARKER_NAME).exists());
    // --init never replaces a log that holds something.
    let real = real_log().await;
    let init = RedbOptions {
        init: true,
        ..RedbOptions::default()
    };
    let log = RedbLog::open_with(real.dir.path(), init).unwrap();
    assert_eq!(log.bounds(P).await.unwrap().end, real.end);
}
