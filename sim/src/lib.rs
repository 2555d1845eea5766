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
//!   carries the `run:` summary, trace lines, failed checks and unmet expectations.
//! - [`run_seed`] draws a fault [`Profile`] from a seed, runs the scenario it
//!   generates, and on failure reports it and [`shrink`]s it to a minimal scenario.
//! - [`simulate_plan`] runs one job spec on a pool of honest workers with no faults and
//!   reports the makespan, each worker's busy time and the timeline; the planner uses
//!   it. [`svg_timeline`] draws any run's timeline.
//!
//! How a run is judged (each property is a [`Check`], declared always or eventually):
//! - The coordinator applies inputs at once but releases replies and effects only once
//!   the batch holding them is durable. Checks follow the released history, which is
//!   what the outside world can see; a crash drops what was not released, so the
//!   history never needs rolling back. A shadow engine applies exactly the durable
//!   inputs; recovery replays snapshot + durable log and must rebuild its state, never
//!   lose an input whose outputs were released nor invent one that was not durable,
//!   and must refuse a log with a corrupted batch instead of starting from less.
//! - After every released event: the engine's `check_invariants` (sampled or at the
//!   end when [`RunOptions::check_every`] says so, because it walks the whole state),
//!   plus history checks: a stale belief in a lease may outlive the newer lease's start
//!   only by the stale holder's clock-drift bound; nothing commits twice; no
//!   completion is accepted from a fence that is not the live lease; worker, job and
//!   tenant caps, blacklists and capabilities hold at every grant.
//! - Outputs: simulated workers complete with an output naming their attempt; once a
//!   job's end is released, and again when the run ends, the engine is read as a
//!   client reads it: every readable output is the one committed by the task's
//!   accepted completion (never a zombie's, a losing duplicate's or a revoked
//!   lease's), and the job's result is the committed outputs of its result tasks.
//! - Status reads (`reads_every_ms`, in about half the swarm's profiles) go through
//!   the commit pipeline behind every input before them: each must run on exactly the
//!   durable state, and no later read may see a job further back, across crashes.
//!   What a worker says in one step travels as one frame and is applied as one group.
//! - A worker trusts a lease until its own deadline (send time of the accept or renew
//!   plus the TTL, on its own clock) and no longer than its session: the send time of
//!   its last answered request plus the liveness timeout. Past that the coordinator
//!   may have declared it lost and given its work away, as the protocol allows.
//! - After the fault phase everything heals and every job must end within a bound.

mod beliefs;
mod budget_checks;
mod budget_knobs;
mod check;
mod check_pace;
mod checks;
mod client;
mod clock;
mod coordinator;
mod data_checks;
mod durable;
mod edge_checks;
mod event_ids;
mod events;
mod expect;
mod faults;
mod fleet;
mod load;
mod network;
mod options;
mod outcomes;
mod plan;
mod profile;
mod profile_budgets;
mod profile_faults;
mod profile_workload;
mod rate_checks;
mod read_checks;
mod render;
mod result_checks;
mod rng;
mod run;
mod scenario;
mod scenario_faults;
mod schedule_checks;
mod script;
mod setup;
mod shadow;
mod shrink;
mod stats;
mod storage;
mod stream_checks;
mod swarm;
mod timeline;
mod trace;
mod usage;
mod vocabulary;
mod wire;
mod work;
mod worker;
mod world;

pub use budget_knobs::BudgetKnobs;
pub use check::{Check, CheckFailure, Modality};
pub use durable::EngineHook;
pub use load::{load, ScenarioError};
pub use plan::{simulate_plan, PlanOutcome, PlanWorker};
pub use profile::{JobShape, PartitionMode, Profile};
pub use run::{run, RunOptions, RunReport};
pub use scenario::{
    CountExpect, Direction, EngineKnobs, Expect, Fault, FaultKind, GroupSpec, JobPlan, NetworkSpec,
    Scenario, SchedulePlan, ScriptAction, ScriptStep, TaskPlan, WorkerSpec,
};
pub use shrink::{shrink, Shrunk};
pub use swarm::{run_seed, scenario_for, summary as swarm_summary, SeedResult, SwarmOptions};
pub use timeline::{svg as svg_timeline, Bar, Mark};
pub use trace::{compact as compact_trace, jsonl as jsonl_trace, TraceLine};
pub use usage::UsagePlan;
