//! Engine command sequences: arbitrary inputs and time jumps, invariants after every
//! step, snapshot + replay equality at the end. The checks live in keel-engine's tests.
#![no_main]

#[path = "../../engine/tests/fuzz_ops/mod.rs"]
mod fuzz_ops;

libfuzzer_sys::fuzz_target!(|case: fuzz_ops::Case| fuzz_ops::run(&case));
