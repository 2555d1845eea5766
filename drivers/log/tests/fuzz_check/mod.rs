//! What the `log_records` fuzz target checks for one input, shared with the in-tree
//! replay (`tests/fuzz_replay.rs`) through `#[path]` so both run exactly the same code.
//!
//! The input is split into records (`u16` little-endian length, then that many bytes).
//! Each record is decoded as an entry frame, a snapshot frame and an entry payload: no
//! bytes may panic a decoder, and whatever decodes must encode back to the same thing.
//! The first record is also restored as an engine snapshot, and the rest are written to
//! a log, one frame optionally replaced by hostile bytes and a snapshot optionally taken
//! part way, then recovered: recovery must refuse any frame that does not decode (it
//! never skips one), and an engine it rebuilds must equal one built by applying the
//! same entries from scratch.

use keel_engine::{Config, Engine};
use keel_log::record::{decode_entry, decode_snapshot, encode_record, encode_snapshot};
use keel_log::{recover, snapshot_of, Entry, Log, MemoryLog, RecoverError};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

const PARTITION: u32 = 3;

pub(crate) fn check(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let records = split_records(rest);
    for (i, r) in records.iter().enumerate() {
        frames_round_trip(i as u64, r);
    }
    let entries: Vec<Entry> = records
        .iter()
        .skip(1)
        .enumerate()
        .filter_map(|(i, r)| Entry::decode(PARTITION, i as u64, r).ok())
        .collect();
    if let Some(first) = records.first() {
        hostile_snapshot(first, &entries);
        recovery(flags, first, &entries);
    }
}

/// Records of the input: a little-endian `u16` length, then that many bytes (fewer at
/// the end of the input).
pub(crate) fn split_records(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let [lo, hi, rest @ ..] = data {
        let len = (u16::from_le_bytes([*lo, *hi]) as usize).min(rest.len());
        let (record, tail) = rest.split_at(len);
        out.push(record);
        data = tail;
    }
    out
}

fn frames_round_trip(offset: u64, bytes: &[u8]) {
    if let Ok(record) = decode_entry(PARTITION, offset, bytes) {
        assert_eq!(record.offset, offset);
        let again = encode_record(&record);
        assert_eq!(
            again, bytes,
            "an entry frame decodes but re-encodes differently"
        );
    }
    if let Ok(snapshot) = decode_snapshot(PARTITION, bytes) {
        assert_eq!(
            encode_snapshot(&snapshot),
            bytes,
            "a snapshot frame re-encodes differently"
        );
    }
    match Entry::decode(PARTITION, offset, bytes) {
        Ok(entry) => {
            let again = Entry::decode(PARTITION, offset, &entry.encode());
            assert_eq!(
                again.ok().as_ref(),
                Some(&entry),
                "an entry does not round-trip"
            );
        }
        Err(e) => assert_eq!(e.code(), "corrupt"),
    }
}

/// A snapshot that restores passed the engine's own consistency check, so inputs
/// applied to it must keep every invariant and never panic.
fn hostile_snapshot(bytes: &[u8], entries: &[Entry]) {
    let Ok(mut engine) = Engine::restore(bytes) else {
        return;
    };
    for (i, entry) in entries.iter().enumerate() {
        engine.apply(entry.now, entry.input.clone());
        if let Err(v) = engine.check_invariants() {
            panic!("invariant broken by entry {i} applied to a restored snapshot: {v}");
        }
    }
    let again = Engine::restore(&engine.snapshot()).expect("a snapshot the engine took restores");
    assert_eq!(again.digest(), engine.digest());
}

fn recovery(flags: u8, hostile: &[u8], entries: &[Entry]) {
    let log = MemoryLog::new();
    let lease = block_on(log.acquire(PARTITION, "fuzz", Duration::from_secs(60)))
        .expect("a fresh log grants the lease");
    let payloads: Vec<Vec<u8>> = entries.iter().map(Entry::encode).collect();
    block_on(log.append(PARTITION, lease.epoch, 0, &payloads)).expect("append");
    let n = entries.len() as u64;
    let snapshot_at = if flags & 0x80 != 0 && n > 0 {
        let at = u64::from(flags >> 4 & 7).min(n);
        let mut engine = Engine::new(Config::default());
        for e in &entries[..at as usize] {
            engine.apply(e.now, e.input.clone());
        }
        let snapshot = snapshot_of(&engine, at);
        block_on(log.store_snapshot(PARTITION, lease.epoch, &snapshot)).expect("snapshot");
        at
    } else {
        0
    };
    let tampered = (flags & 1 != 0 && n > snapshot_at)
        .then(|| snapshot_at + u64::from(flags >> 1 & 7) % (n - snapshot_at));
    if let Some(offset) = tampered {
        log.tamper(PARTITION, offset, |frame| *frame = hostile.to_vec());
    }
    let undecodable = tampered.filter(|&offset| {
        decode_entry(PARTITION, offset, hostile)
            .and_then(|r| Entry::decode(PARTITION, offset, &r.payload))
            .is_err()
    });
    match block_on(recover(&log, PARTITION, Config::default())) {
        Ok(recovered) => {
            assert_eq!(undecodable, None, "recovery skipped an undecodable frame");
            if let Err(v) = recovered.engine.check_invariants() {
                panic!("invariant broken after recovery: {v}");
            }
            if tampered.is_none() {
                let mut scratch = Engine::new(Config::default());
                for e in entries {
                    scratch.apply(e.now, e.input.clone());
                }
                assert_eq!(recovered.next, n);
                assert_eq!(
                    recovered.engine.digest(),
                    scratch.digest(),
                    "snapshot + replay differs from replay from scratch"
                );
            }
        }
        Err(RecoverError::Log(e)) => {
            assert!(tampered.is_some(), "an untouched log fails to recover: {e}");
            assert_eq!(e.code(), "corrupt");
        }
        Err(e) => panic!("an untouched snapshot fails to restore: {e}"),
    }
}

/// Runs a future of the in-memory log, which never waits on anything.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}
