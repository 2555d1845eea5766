//! The durable half's judgements, each on its own: when it snapshots (from the live
//! engine, or late from its base), what it makes of an intact or a corrupt disk, where
//! a recovered log may end, and a replay that does not rebuild the durable state.

use super::*;
use crate::rng::{SimRng, Stream};
use crate::storage::Entry;
use keel_engine::{ClientCommand, Config, Input, JobSpec, Payload, TaskSpec};

/// The submission of job `name` with one task carrying `bytes` of payload.
fn submit(name: &str, bytes: usize) -> Entry {
    let mut task = TaskSpec::new("a");
    task.payload = Payload::from(vec![b'p'; bytes]);
    let spec = JobSpec::new(name, vec![task]);
    (1, Input::Client(ClientCommand::SubmitJob(spec)))
}

fn rng() -> SimRng {
    SimRng::new(7, Stream::Run)
}

/// A durable half and the live engine that applied what it logs.
struct Disk {
    d: Durable,
    live: Engine,
}

impl Disk {
    fn new(config: Config) -> Disk {
        let live = Engine::new(config);
        Disk {
            d: Durable::new(&live, None),
            live,
        }
    }

    /// Applies `entries`, appends them as one batch and completes its fsync; the live
    /// engine then holds exactly the durable inputs unless `ahead` more are applied
    /// after them (and lost: they are never appended).
    fn append_synced(&mut self, entries: Vec<Entry>, ahead: &[Entry]) {
        let first = self.d.position + 1;
        for (at, input) in entries.iter().chain(ahead).cloned() {
            self.live.apply(at, input);
        }
        self.d.storage.append(first, &entries, &mut rng());
        let live_end = self.d.position + (entries.len() + ahead.len()) as u64;
        self.d.in_flight = entries.len() as u64;
        self.d.synced(9, &self.live, Some(live_end)).unwrap();
    }

    /// Reads the disk back and replays it, checked against the live engine when it
    /// holds exactly the durable inputs.
    fn recover(&mut self, exact: bool) -> Result<Engine, CheckFailure> {
        let read = self.d.read(9).unwrap().unwrap();
        self.d.replay(9, read, exact.then_some(&self.live))
    }
}

fn big_payloads() -> Config {
    let mut config = Config::default();
    config.limits.max_payload_bytes = 1 << 20;
    config
}

#[test]
fn a_synced_append_is_durable_and_snapshots_wait_for_64_kib_of_log() {
    let mut disk = Disk::new(big_payloads());
    disk.append_synced(vec![submit("a", 2_000), submit("b", 10)], &[]);
    assert_eq!(disk.d.position, 2);
    assert_eq!(disk.d.in_flight, 0);
    let small = disk.d.storage.log_bytes();
    assert!(small > 2_000, "a small log stays a log: {small} bytes");
    disk.append_synced(vec![submit("c", 70_000)], &[]);
    assert_eq!(
        disk.d.storage.log_bytes(),
        0,
        "the snapshot replaced the log"
    );
    let read = disk.d.read(9).unwrap().unwrap();
    assert_eq!((read.snapshot_position, read.position()), (3, 3));
    assert!(disk.recover(true).is_ok());
    assert!(disk.recover(false).is_ok());
}

#[test]
fn a_large_snapshot_waits_for_twice_its_size_of_log() {
    let mut disk = Disk::new(big_payloads());
    disk.append_synced(vec![submit("big", 100_000)], &[]);
    let snapshot = disk.d.storage.snapshot_bytes();
    assert!(snapshot > 100_000 && disk.d.storage.log_bytes() == 0);
    disk.append_synced(vec![submit("more", 150_000)], &[]);
    assert!(
        disk.d.storage.log_bytes() > 150_000,
        "150 kB of log is under twice a {snapshot}-byte snapshot"
    );
    // 210 kB is over twice the snapshot and under three times it.
    disk.append_synced(vec![submit("most", 60_000)], &[]);
    assert_eq!(disk.d.storage.log_bytes(), 0);
    assert_eq!(disk.d.position, 3);
}

#[test]
fn a_due_snapshot_waits_while_the_live_engine_is_ahead_until_it_is_overdue() {
    let mut disk = Disk::new(big_payloads());
    disk.append_synced(vec![submit("a", 70_000)], &[submit("lost", 10)]);
    let log = disk.d.storage.log_bytes();
    assert!(
        log > 64 * 1024,
        "due, but the live engine is ahead: {log} bytes"
    );
    // Twice the 64 KiB that made it due: taken from the base, which applies the log.
    disk.append_synced(vec![submit("b", 70_000)], &[submit("lost too", 10)]);
    assert_eq!(
        disk.d.storage.log_bytes(),
        0,
        "an overdue snapshot is taken"
    );
    let read = disk.d.read(9).unwrap().unwrap();
    assert_eq!((read.snapshot_position, read.count), (2, 0));
    let engine = disk
        .recover(false)
        .expect("the snapshot holds both durable jobs");
    assert!(engine.job_by_name("b").is_some() && engine.job_by_name("lost").is_none());
}

#[test]
fn an_intact_disk_recovers_and_a_corrupt_one_is_refused() {
    let mut disk = Disk::new(Config::default());
    disk.append_synced(vec![submit("a", 10)], &[]);
    assert_eq!(disk.d.read(5).unwrap().unwrap().position(), 1);
    disk.d.storage.corrupt(&mut rng());
    assert!(
        matches!(disk.d.read(5), Ok(Err(_))),
        "refusing a corrupt log is right"
    );
}

#[test]
fn a_recovered_log_ends_between_the_acknowledged_and_the_appended_inputs() {
    let mut disk = Disk::new(Config::default());
    let entries = vec![submit("a", 1), submit("b", 1), submit("c", 1)];
    disk.append_synced(entries, &[]);
    let d = &disk.d;
    assert_eq!(d.check_position(5, 3, 3), Ok(()));
    assert_eq!(d.check_position(5, 2, 1), Ok(()));
    let lost = d.check_position(5, 2, 3).unwrap_err();
    assert_eq!(lost.check, Check::LostAcknowledgedInput);
    let invented = d.check_position(5, 4, 3).unwrap_err();
    assert_eq!(invented.check, Check::InventedInput);
}

/// Replays the log without its last entry.
fn replay_short(disk: &mut Disk, exact: bool) -> CheckFailure {
    let mut read = disk.d.read(5).unwrap().unwrap();
    let last = read.batches.last_mut().expect("a batch");
    last.pop();
    read.count -= 1;
    let live = exact.then_some(&disk.live);
    disk.d.replay(5, read, live).unwrap_err()
}

#[test]
fn a_replay_short_of_the_durable_state_is_caught() {
    let mut disk = Disk::new(Config::default());
    disk.append_synced(vec![submit("a", 1), submit("b", 1)], &[]);
    assert!(disk.recover(true).is_ok());
    let e = replay_short(&mut disk, true);
    assert_eq!(e.check, Check::RecoveryDigest);
    assert!(e.detail.contains("differs from the durable state"), "{e}");
}

#[test]
fn with_the_live_engine_ahead_a_replay_is_judged_against_the_base_and_the_log() {
    let mut disk = Disk::new(Config::default());
    disk.append_synced(vec![submit("a", 1), submit("b", 1)], &[submit("lost", 1)]);
    assert!(
        disk.recover(false).is_ok(),
        "the input applied after is not durable"
    );
    let e = replay_short(&mut disk, false);
    assert_eq!(e.check, Check::RecoveryDigest);
    // Judged against the live engine instead, the lost input would fail it too.
    assert!(disk.recover(true).is_err());
}

/// The submission of a job whose batch alone makes exactly `bytes` of log.
fn submit_logging(bytes: usize) -> Entry {
    let logged = |entry: &Entry| {
        let mut storage = Storage::new(&[]);
        storage.append(1, std::slice::from_ref(entry), &mut rng());
        storage.log_bytes()
    };
    let overhead = logged(&submit("exact", 0));
    (bytes.saturating_sub(overhead + 8)..=bytes)
        .rev()
        .map(|n| submit("exact", n))
        .find(|entry| logged(entry) == bytes)
        .expect("a payload size that logs exactly the bytes asked for")
}

#[test]
fn a_log_of_exactly_the_due_size_is_snapshotted() {
    let mut disk = Disk::new(big_payloads());
    disk.append_synced(vec![submit_logging(64 * 1024)], &[]);
    assert_eq!(disk.d.storage.log_bytes(), 0, "64 KiB of log is due");
}

#[test]
fn a_log_of_exactly_the_overdue_size_is_snapshotted_with_the_live_engine_ahead() {
    let mut disk = Disk::new(big_payloads());
    let ahead = [submit("lost", 1)];
    disk.append_synced(vec![submit_logging(128 * 1024 - 1)], &ahead);
    assert_eq!(
        disk.d.storage.log_bytes(),
        128 * 1024 - 1,
        "not yet overdue"
    );
    let mut disk = Disk::new(big_payloads());
    disk.append_synced(vec![submit_logging(128 * 1024)], &ahead);
    assert_eq!(
        disk.d.storage.log_bytes(),
        0,
        "twice the due size is overdue"
    );
}

#[test]
fn a_byte_flipped_on_the_disk_does_not_reach_the_durable_state() {
    let mut disk = Disk::new(big_payloads());
    disk.append_synced(vec![submit("a", 70_000)], &[]);
    assert_eq!(disk.d.storage.log_bytes(), 0, "taken from the live engine");
    disk.append_synced(vec![submit("b", 150_000)], &[submit("lost", 10)]);
    let flipped = disk.d.storage.corrupt(&mut SimRng::new(1, Stream::Run));
    assert!(flipped.starts_with("log byte"), "{flipped}");
    // Overdue: the base (after "a") plus the copies of the frames since it.
    disk.append_synced(vec![submit("c", 150_000)], &[submit("lost too", 10)]);
    assert_eq!(
        disk.d.storage.log_bytes(),
        0,
        "an overdue snapshot is taken"
    );
    let engine = disk
        .recover(false)
        .expect("the snapshot holds every durable job");
    for name in ["a", "b", "c"] {
        assert!(engine.job_by_name(name).is_some(), "{name} is durable");
    }
    assert!(engine.job_by_name("lost").is_none());
}
