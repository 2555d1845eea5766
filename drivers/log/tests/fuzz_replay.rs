//! The `log_records` fuzz target's checks, run without the fuzzer: every file of the
//! checked-in corpus (`fuzz/corpus/log_records/`) and random inputs, both arbitrary
//! bytes and well-formed logs with one record damaged, so a regression the fuzzer once
//! found fails `cargo test`.

#[path = "../../../fuzz/corpus_replay.rs"]
mod corpus_replay;
#[path = "fuzz_check/mod.rs"]
mod fuzz_check;

use keel_engine::{ClientCommand, Input, InstanceId, JobSpec, TaskSpec, WorkerCommand, WorkerId};
use keel_log::record::encode_entry;
use keel_log::Entry;
use proptest::prelude::*;

#[test]
fn every_corpus_file_passes_the_fuzz_checks() {
    corpus_replay::replay("log_records", 5, fuzz_check::check);
}

/// Entries a coordinator really writes: a worker joining, a job, work requested.
fn plausible_entries() -> Vec<Entry> {
    let w = WorkerId::new("w1");
    let register = WorkerCommand::Register {
        capabilities: vec!["gpu".into()],
        lanes: vec![],
        max_concurrency: 2,
    };
    let job = JobSpec::new("j", vec![TaskSpec::new("a"), TaskSpec::new("b")]);
    vec![
        Entry::new(0, Input::worker(&w, InstanceId::new(1), register)),
        Entry::new(5, Input::Client(ClientCommand::SubmitJob(job))),
        Entry::new(
            9,
            Input::worker(
                &w,
                InstanceId::new(1),
                WorkerCommand::RequestWork { credits: 2 },
            ),
        ),
        Entry::new(40_000, Input::Tick),
    ]
}

/// A check input: `flags`, then `first` and the encoded entries as records.
fn input(flags: u8, first: &[u8], entries: &[Entry]) -> Vec<u8> {
    let mut out = vec![flags];
    let records = std::iter::once(first.to_vec()).chain(entries.iter().map(Entry::encode));
    for r in records {
        out.extend_from_slice(&(r.len() as u16).to_le_bytes());
        out.extend_from_slice(&r);
    }
    out
}

#[test]
fn a_damaged_frame_stops_recovery_wherever_it_is() {
    let entries = plausible_entries();
    for flags in 0..=255u8 {
        fuzz_check::check(&input(flags, b"\x01garbage", &entries));
        let valid_elsewhere = encode_entry(1, 7, 8, &entries[1].encode());
        fuzz_check::check(&input(flags, &valid_elsewhere, &entries));
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_pass_the_fuzz_checks(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzz_check::check(&bytes);
    }

    #[test]
    fn flipped_bytes_in_real_entries_pass_the_fuzz_checks(
        flags in any::<u8>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 1..4),
    ) {
        let mut bytes = input(flags, &[], &plausible_entries());
        for (at, mask) in flips {
            let i = at.index(bytes.len() - 1) + 1;
            bytes[i] ^= mask;
        }
        fuzz_check::check(&bytes);
    }
}

/// Found by the fuzzer: a snapshot whose per-tenant load table is longer than its
/// interned tenant names. Kept out of the corpus, where libFuzzer would stop on it at
/// start-up, until the engine refuses it.
#[test]
fn a_snapshot_with_tenant_loads_but_no_tenant_names_is_refused() {
    let path = corpus_replay::fuzz_dir()
        .join("regressions/log_records/restore-tenant-loads-without-names");
    let bytes = std::fs::read(path).expect("regression input reads");
    let records = fuzz_check::split_records(&bytes[1..]);
    assert!(keel_engine::Engine::restore(records[0]).is_err());
    fuzz_check::check(&bytes);
}

/// Found by the fuzzer: a snapshot that restores although a task names a capability set
/// the state does not hold; the next input that looks the set up panics.
#[test]
fn a_snapshot_naming_a_missing_capability_set_is_refused() {
    let path = corpus_replay::fuzz_dir().join("regressions/log_records/capset-id-without-capset");
    let bytes = std::fs::read(path).expect("regression input reads");
    fuzz_check::check(&bytes);
}
