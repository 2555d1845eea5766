//! Log records (bytes): entry and snapshot frames, entry payloads, snapshot restore,
//! and recovery from a log with a hostile record. The checks live in keel-log's tests.
#![no_main]

#[path = "../../drivers/log/tests/fuzz_check/mod.rs"]
mod fuzz_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_check::check(data));
