//! Criterion benches for Keel live in benches/.
