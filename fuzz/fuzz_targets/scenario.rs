//! Scenario files (TOML text): the loader and the printer used for shrunk repros. The
//! checks live in keel-sim's tests.
#![no_main]

#[path = "../../sim/tests/fuzz_check/mod.rs"]
mod fuzz_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_check::check(data));
