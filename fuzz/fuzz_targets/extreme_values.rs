//! Engine runs in which every number (configuration, job spec, commands, clock) is
//! drawn from the edges of its type; the input is a postcard-encoded case. The checks
//! live in keel-engine's tests.
#![no_main]

#[path = "../../engine/tests/extreme/mod.rs"]
mod extreme;

libfuzzer_sys::fuzz_target!(|data: &[u8]| extreme::run_bytes(data));
