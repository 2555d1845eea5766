//! Job spec files (TOML text, optionally with a pool file): loader, pool loader,
//! planner, and admission by the engine. The checks live in keel-jobs's tests.
#![no_main]

#[path = "../../jobs/tests/fuzz_check/mod.rs"]
mod fuzz_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_check::check(data));
