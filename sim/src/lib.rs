//! keel-sim: a seeded discrete-event simulator that drives the real `keel-engine`.
//!
//! One `u64` seed names a run. Simulated workers (honest, slow, flaky, crashing,
//! pausing, with drifting clocks), a lossy partitionable network, a coordinator with a
//! durable log that can crash and recover, and clients submitting and cancelling jobs
//! all live in virtual time on one thread. After every released event the checkers
//! look for a safety violation the engine cannot see from inside; after the fault
//! phase everything heals and every job must end within a bound.
//!
//! Entry points:
//! - [`load`] a scenario file and [`run`] it with [`RunOptions`]; the [`RunReport`]
//!   carries the `run:` summary, trace lines, violations and unmet expectations.
//! - [`swarm::run_seed`] draws a fault profile from a seed, runs it, and on failure
//!   [`shrink`]s it to a minimal scenario.
//! - [`simulate_plan`] runs one job spec on a pool of honest workers with no faults and
//!   reports the makespan, each worker's busy time and the timeline; the planner uses
//!   it. [`timeline::svg`] draws any run's timeline.

mod checks;
mod client;
mod clock;
mod coordinator;
mod events;
mod expect;
mod ledger;
mod load;
mod network;
mod plan;
pub mod profile;
mod render;
mod rng;
mod run;
mod scenario;
mod setup;
pub mod shrink;
pub mod swarm;
pub mod timeline;
pub mod trace;
mod work;
mod worker;
mod world;

pub use checks::Violation;
pub use coordinator::EngineHook;
pub use ledger::Bar;
pub use load::{load, ScenarioError};
pub use plan::{simulate_plan, PlanOutcome, PlanWorker};
pub use run::{run, Mark, RunOptions, RunReport};
pub use scenario::{
    CountExpect, Direction, EngineKnobs, Expect, Fault, FaultKind, GroupSpec, JobPlan, NetworkSpec,
    Scenario, TaskPlan, WorkerSpec,
};
