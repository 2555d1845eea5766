//! keel-sim: a seeded discrete-event simulator that drives the real `keel-engine`.
//!
//! One `u64` seed names a run. Simulated workers (honest, slow, flaky, crashing,
//! pausing, with drifting and stepping clocks), a lossy, duplicating, reordering and
//! partitionable network, a coordinator with a durable log that can crash and recover,
//! and clients submitting and cancelling job DAGs all live in virtual time on one
//! thread, ordered by (time, sequence) and drawn from one ChaCha generator.
//!
//! Entry points:
//! - [`load`] a scenario file and [`run`] it with [`RunOptions`]; the [`RunReport`]
//!   carries the `run:` summary, trace lines, violations and unmet expectations.
//! - [`swarm::run_seed`] draws a fault profile from a seed, runs the scenario it
//!   generates, and on failure reports it and [`shrink`]s it to a minimal scenario.
//! - [`simulate_plan`] runs one job spec on a pool of honest workers with no faults and
//!   reports the makespan, each worker's busy time and the timeline; the planner uses
//!   it. [`timeline::svg`] draws any run's timeline.
//!
//! How a run is judged:
//! - The coordinator applies inputs at once but releases replies and effects only at
//!   the next group commit. Checks follow the released history, which is what the
//!   outside world can see; a crash drops what was not released, so the history never
//!   needs rolling back. Recovery replays snapshot + durable log and must reproduce the
//!   digest of the last sync and every acknowledged job.
//! - After every released event: the engine's `check_invariants` (sampled or at the
//!   end when [`RunOptions::check_every`] says so, because it walks the whole state),
//!   plus history checks: a stale belief in a lease may outlive the newer lease's start
//!   only by the stale holder's clock-drift bound; nothing commits twice; no
//!   completion is accepted from a fence that is not the live lease; worker, job and
//!   tenant caps, blacklists and capabilities hold at every grant.
//! - A worker trusts a lease until its own deadline (send time of the accept or renew
//!   plus the TTL, on its own clock) and no longer than its session: the send time of
//!   its last answered request plus the liveness timeout. Past that the coordinator
//!   may have declared it lost and given its work away, as the protocol allows.
//! - After the fault phase everything heals and every job must end within a bound.

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
