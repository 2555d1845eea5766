//! The engine's integration tests, one module per concern, in one test binary: each
//! binary links keel-engine on its own, so one binary instead of two dozen makes a
//! rebuild after an engine change (every mutant of `scripts/mutants.sh`) link once.

// The generators in `extreme` and `fuzz_ops` are crate roots of fuzz targets too, where
// their items must be `pub`; here they sit in private modules.
#![allow(unreachable_pub)]

mod all_lanes;
mod budgets;
mod config;
mod configure;
mod dag;
mod edge_release;
mod edges;
mod extreme_values;
mod faults;
mod fuzz_sequences;
mod global_limits;
mod goldens;
mod ids;
mod inputs;
mod job_spec;
mod leases;
mod lifecycle;
mod limits;
mod names;
mod output_limits;
mod proptest_machine;
mod rates;
mod regressions;
mod result_tasks;
mod results;
mod retries;
mod routing;
mod schedules;
mod streams;
mod tenant_budgets;
mod workers;
