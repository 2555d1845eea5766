//! The properties a run is judged by, each with a stable name and declared as a safety
//! property (it must hold after every event) or a liveness property (it must come true
//! eventually, once faults heal), as stateright declares its properties.

use keel_engine::Time;
use std::fmt;

/// Whether a property must always hold or must eventually come true.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Modality {
    /// Safety: checked after every released event; one counterexample fails the run.
    Always,
    /// Liveness: checked when the run ends; every job must have ended by then.
    Eventually,
}

/// One property the simulator checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    /// The engine's own `check_invariants` fails (its kind is in the detail).
    EngineInvariant,
    /// Two workers believe they hold a live lease on one task beyond the drift bound.
    DoubleLease,
    /// A task's effect was committed twice.
    DoubleCommit,
    /// A completion or failure was accepted from a fence that is not the live lease.
    StaleCompletion,
    /// Frames were appended for a fence that is not the live lease.
    StaleEmit,
    /// A task's stream, read, holds a lease's frames out of order, twice, with a gap,
    /// split by another lease's, or under the wrong task or attempt.
    StreamOrder,
    /// A task's stream holds fewer of a lease's frames than were acknowledged to it.
    StreamLost,
    /// A consumer read an edge's frames out of order or twice within one attempt, or
    /// more than one frame of a `newest` edge in one read.
    EdgeOrder,
    /// A consumer read a frame of a producer lease older than the producer's latest.
    EdgeStale,
    /// A consumer of a `fifo` or `block` edge read a frame without the one before it.
    EdgeLost,
    /// A consumer read a frame below a cursor the coordinator had acknowledged.
    EdgeRedelivered,
    /// A lease started from a grant the worker was not offered.
    LeaseWithoutGrant,
    /// A task was offered while another worker held it.
    DoubleGrant,
    /// A grant offered a task no acknowledged job contains.
    UnknownTask,
    /// A grant was offered to a worker that never registered.
    UnknownWorker,
    /// A grant went to a worker already at its concurrency.
    WorkerCap,
    /// A grant went to a job already at its concurrency cap.
    JobCap,
    /// A grant went to a tenant already at its cap.
    TenantCap,
    /// A tenant's, lane's or rate key's bucket let more grants through in some window
    /// than its rate and burst allow.
    RateLimit,
    /// A schedule fired a due time twice or out of order, or a run no client's
    /// schedule accounts for.
    ScheduleFire,
    /// A grant past a reached hard limit of a budget, a usage report counted twice or
    /// not at all, a limit effect that disagrees with the count, or a job ended by its
    /// budget other than failed with its unfinished tasks cancelled for it.
    Budget,
    /// A blacklisted worker was offered a grant.
    BlacklistedGrant,
    /// A task was offered to a worker that lacks one of its capabilities.
    Capability,
    /// A task or job finished twice.
    DoubleFinish,
    /// Recovery rebuilt a state other than the state of exactly the durable inputs.
    RecoveryDigest,
    /// Recovery lost an input whose outputs had been released.
    LostAcknowledgedInput,
    /// Recovery rebuilt inputs that were never durably appended.
    InventedInput,
    /// Outputs were released for inputs that were not yet durable.
    UndurableRelease,
    /// Recovery started from a log with a corrupted batch instead of refusing.
    CorruptionUndetected,
    /// Recovery refused a log that holds no corrupted batch.
    RecoveryRefused,
    /// A grant's inputs are not the committed outputs of its task's upstream tasks, or
    /// its signal is not the one that resumed the task.
    InputMismatch,
    /// A finished job's result, read from the engine, is not the committed outputs of
    /// its result tasks.
    JobResult,
    /// A task's readable output is one no accepted completion committed.
    UncommittedOutput,
    /// A status read ran against inputs the log did not yet hold.
    ReadBeforeDurable,
    /// A status read saw a job further back than an earlier read did (more tasks
    /// remaining, or its outcome gone), as after a crash lost what a read had shown.
    ReadWentBack,
    /// Every job ends after healing, within the scenario's bound.
    Liveness,
    /// The same seed gives the same run.
    Determinism,
}

impl Check {
    /// Every check, in declaration order.
    pub const ALL: [Check; 37] = [
        Check::EngineInvariant,
        Check::DoubleLease,
        Check::DoubleCommit,
        Check::StaleCompletion,
        Check::StaleEmit,
        Check::StreamOrder,
        Check::StreamLost,
        Check::EdgeOrder,
        Check::EdgeStale,
        Check::EdgeLost,
        Check::EdgeRedelivered,
        Check::LeaseWithoutGrant,
        Check::DoubleGrant,
        Check::UnknownTask,
        Check::UnknownWorker,
        Check::WorkerCap,
        Check::JobCap,
        Check::TenantCap,
        Check::RateLimit,
        Check::ScheduleFire,
        Check::Budget,
        Check::BlacklistedGrant,
        Check::Capability,
        Check::DoubleFinish,
        Check::RecoveryDigest,
        Check::LostAcknowledgedInput,
        Check::InventedInput,
        Check::UndurableRelease,
        Check::CorruptionUndetected,
        Check::RecoveryRefused,
        Check::InputMismatch,
        Check::JobResult,
        Check::UncommittedOutput,
        Check::ReadBeforeDurable,
        Check::ReadWentBack,
        Check::Liveness,
        Check::Determinism,
    ];

    /// The stable snake_case name used in reports, shrunk repros and scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Check::EngineInvariant => "engine_invariant",
            Check::DoubleLease => "double_lease",
            Check::DoubleCommit => "double_commit",
            Check::StaleCompletion => "stale_completion",
            Check::StaleEmit => "stale_emit",
            Check::StreamOrder => "stream_order",
            Check::StreamLost => "stream_lost",
            Check::EdgeOrder => "edge_order",
            Check::EdgeStale => "edge_stale",
            Check::EdgeLost => "edge_lost",
            Check::EdgeRedelivered => "edge_redelivered",
            Check::LeaseWithoutGrant => "lease_without_grant",
            Check::DoubleGrant => "double_grant",
            Check::UnknownTask => "unknown_task",
            Check::UnknownWorker => "unknown_worker",
            Check::WorkerCap => "worker_cap",
            Check::JobCap => "job_cap",
            Check::TenantCap => "tenant_cap",
            Check::RateLimit => "rate_limit",
            Check::ScheduleFire => "schedule_fire",
            Check::Budget => "budget",
            Check::BlacklistedGrant => "blacklisted_grant",
            Check::Capability => "capability",
            Check::DoubleFinish => "double_finish",
            Check::RecoveryDigest => "recovery_digest",
            Check::LostAcknowledgedInput => "lost_acknowledged_input",
            Check::InventedInput => "invented_input",
            Check::UndurableRelease => "undurable_release",
            Check::CorruptionUndetected => "corruption_undetected",
            Check::RecoveryRefused => "recovery_refused",
            Check::InputMismatch => "input_mismatch",
            Check::JobResult => "job_result",
            Check::UncommittedOutput => "uncommitted_output",
            Check::ReadBeforeDurable => "read_before_durable",
            Check::ReadWentBack => "read_went_back",
            Check::Liveness => "liveness",
            Check::Determinism => "determinism",
        }
    }

    /// Whether the check must always hold or must eventually come true.
    pub fn modality(self) -> Modality {
        match self {
            Check::Liveness => Modality::Eventually,
            _ => Modality::Always,
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A check that failed, with when and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckFailure {
    /// Simulated time of the event that broke it.
    pub at: Time,
    /// Which check failed.
    pub check: Check,
    /// What broke it, naming the ids involved.
    pub detail: String,
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {} ms: {}", self.check, self.at, self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_distinct_and_only_liveness_is_eventual() {
        let names: BTreeSet<&str> = Check::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Check::ALL.len());
        let eventual: Vec<Check> = Check::ALL
            .into_iter()
            .filter(|c| c.modality() == Modality::Eventually)
            .collect();
        assert_eq!(eventual, [Check::Liveness]);
    }
}
