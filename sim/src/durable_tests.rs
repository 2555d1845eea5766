//! The durable half's judgements, each on its own: when it snapshots, what it makes of
//! an intact or a corrupt disk, where a recovered log may end, and a replay that does
//! not rebuild the durable state.

use super::*;
use crate::rng::{SimRng, Stream};
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

/// Appends `entries` as one batch and completes its fsync.
fn append_synced(d: &mut Durable, entries: Vec<Entry>) {
    let first = d.shadow_position + 1;
    d.storage.append(first, &entries, &mut rng());
    d.in_flight = entries;
    d.synced();
}

fn big_payloads() -> Config {
    let mut config = Config::default();
    config.limits.max_payload_bytes = 1 << 20;
    config
}

#[test]
fn a_synced_append_reaches_the_shadow_and_snapshots_wait_for_64_kib_of_log() {
    let mut d = Durable::new(&Engine::new(big_payloads()));
    append_synced(&mut d, vec![submit("a", 2_000), submit("b", 10)]);
    assert_eq!(d.shadow_position, 2);
    assert!(d.in_flight.is_empty());
    let small = d.storage.log_bytes();
    assert!(small > 2_000, "a small log stays a log: {small} bytes");
    append_synced(&mut d, vec![submit("c", 70_000)]);
    assert_eq!(d.storage.log_bytes(), 0, "the snapshot replaced the log");
    let read = d.read(9).unwrap().unwrap();
    assert_eq!((read.snapshot_position, read.position()), (3, 3));
    assert!(d.replay(9, read, None).is_ok());
}

#[test]
fn a_large_snapshot_waits_for_twice_its_size_of_log() {
    let mut d = Durable::new(&Engine::new(big_payloads()));
    append_synced(&mut d, vec![submit("big", 100_000)]);
    let snapshot = d.storage.snapshot_bytes();
    assert!(snapshot > 100_000 && d.storage.log_bytes() == 0);
    append_synced(&mut d, vec![submit("more", 150_000)]);
    assert!(
        d.storage.log_bytes() > 150_000,
        "150 kB of log is under twice a {snapshot}-byte snapshot"
    );
    // 210 kB is over twice the snapshot and under three times it.
    append_synced(&mut d, vec![submit("most", 60_000)]);
    assert_eq!(d.storage.log_bytes(), 0);
    assert_eq!(d.shadow_position, 3);
}

#[test]
fn an_intact_disk_recovers_and_a_corrupt_one_is_refused() {
    let mut d = Durable::new(&Engine::new(Config::default()));
    append_synced(&mut d, vec![submit("a", 10)]);
    assert_eq!(d.read(5).unwrap().unwrap().position(), 1);
    d.storage.corrupt(&mut rng());
    assert!(
        matches!(d.read(5), Ok(Err(_))),
        "refusing a corrupt log is right"
    );
}

#[test]
fn a_recovered_log_ends_between_the_acknowledged_and_the_appended_inputs() {
    let mut d = Durable::new(&Engine::new(Config::default()));
    append_synced(&mut d, vec![submit("a", 1), submit("b", 1), submit("c", 1)]);
    assert_eq!(d.check_position(5, 3, 3), Ok(()));
    assert_eq!(d.check_position(5, 2, 1), Ok(()));
    let lost = d.check_position(5, 2, 3).unwrap_err();
    assert_eq!(lost.check, Check::LostAcknowledgedInput);
    let invented = d.check_position(5, 4, 3).unwrap_err();
    assert_eq!(invented.check, Check::InventedInput);
}

#[test]
fn a_replay_short_of_the_durable_state_is_caught() {
    let mut d = Durable::new(&Engine::new(Config::default()));
    append_synced(&mut d, vec![submit("a", 1), submit("b", 1)]);
    assert!(d.replay(5, d.read(5).unwrap().unwrap(), None).is_ok());
    let mut read = d.read(5).unwrap().unwrap();
    let last = read.batches.last_mut().expect("a batch");
    last.pop();
    read.count -= 1;
    let e = d.replay(5, read, None).unwrap_err();
    assert_eq!(e.check, Check::RecoveryDigest);
    assert!(e.detail.contains("differs from the durable state"), "{e}");
}
