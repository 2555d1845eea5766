//! Typed failures of the coordinator. Each says whether an input may have been
//! recorded, so a caller knows whether retrying it elsewhere is safe.

use crate::fault::StoreFault;
use crate::poison::Poisoned;
use keel_log::{Epoch, LogError, Partition, RecoverError};
use std::fmt;

/// Why a coordinator stopped leading its partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deposed {
    /// Another coordinator took the partition; the log's epoch is now `current`.
    Fenced {
        /// The log's epoch now.
        current: Epoch,
    },
    /// The lease ran out before it could be renewed.
    LeaseLapsed,
}

impl fmt::Display for Deposed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Deposed::Fenced { current } => write!(f, "fenced by epoch {current}"),
            Deposed::LeaseLapsed => f.write_str("its lease lapsed"),
        }
    }
}

/// Why the coordinator refused or stopped, saying whether the input may be recorded.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// This coordinator does not lead the partition. Nothing of the refused input was
    /// recorded; another coordinator may serve it, or this one once it leads again.
    #[error("partition {partition}: not the leader (epoch {epoch}, {why})")]
    NotLeader {
        /// The partition served.
        partition: Partition,
        /// The epoch this coordinator held.
        epoch: Epoch,
        /// How it lost leadership.
        why: Deposed,
    },
    /// The batch holding the input failed to append. It may or may not have been
    /// recorded (a store can fail after writing); the coordinator rebuilt its state
    /// from the log and goes on serving.
    #[error("partition {partition}: not durable: {fault}; the input may or may not be recorded ({code}: {message})")]
    NotDurable {
        /// The partition served.
        partition: Partition,
        /// What kind of store failure.
        fault: StoreFault,
        /// The log error's stable code.
        code: &'static str,
        /// The log error's text.
        message: String,
    },
    /// The coordinator leads but its log cannot take writes now (unreachable, full, or
    /// being read back after a failed append). Nothing of the input was recorded.
    #[error("partition {partition}: not durable: {fault}; the input was not recorded, retry later ({message})")]
    Unavailable {
        /// The partition served.
        partition: Partition,
        /// What kind of store failure.
        fault: StoreFault,
        /// The log error's text.
        message: String,
    },
    /// The engine panicked applying an input: the coordinator stopped for good. The
    /// inputs of the batch that held it were recorded only if `poisoned.recorded`.
    #[error("partition {partition}: {poisoned}")]
    EnginePanicked {
        /// The partition served.
        partition: Partition,
        /// The input the engine panicked on, and whether its batch was recorded.
        poisoned: Poisoned,
    },
    /// A log call outside the commit path failed (leadership, reads, repairs).
    #[error(transparent)]
    Log(#[from] LogError),
    /// The engine could not be rebuilt from the log.
    #[error(transparent)]
    Recover(#[from] RecoverError),
    /// Replaying the log met an entry that panics the engine; the partition cannot be
    /// served until an operator skips it or cancels its job (`keel admin`).
    #[error("partition {partition}: {poisoned}")]
    PoisonedLog {
        /// The partition served.
        partition: Partition,
        /// The entry that panics the engine.
        poisoned: Poisoned,
    },
    /// The coordinator stopped because recovery failed in a way waiting does not mend
    /// (a damaged log); serving again needs an operator.
    #[error("partition {partition}: the coordinator stopped: {reason}")]
    Halted {
        /// The partition served.
        partition: Partition,
        /// What recovery reported.
        reason: String,
    },
    /// An offline repair named an offset that is not a live entry of the log.
    #[error("partition {partition}: offset {offset} is not an entry the log replays (entries {first} to {end} are, the end excluded)")]
    NotInLog {
        /// The partition served.
        partition: Partition,
        /// The offset given.
        offset: keel_log::Offset,
        /// The first live entry.
        first: keel_log::Offset,
        /// Where the log ends.
        end: keel_log::Offset,
    },
    /// The engine refused an input an offline repair appends; nothing was appended.
    #[error("partition {partition}: refused: {rejection}")]
    Refused {
        /// The partition served.
        partition: Partition,
        /// Why the engine refused it.
        rejection: keel_engine::Rejection,
    },
    /// A coordinator setting is out of range.
    #[error("invalid coordinator config: {field} {problem}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The engine configuration is below a floor of `keel_engine::Config::validate`.
    #[error("invalid engine config: {0}")]
    InvalidEngineConfig(#[from] keel_engine::ConfigError),
    /// The coordinator was shut down, or its engine task ended.
    #[error("the coordinator has stopped")]
    Stopped,
}

impl CoordinatorError {
    /// A stable name for metrics and messages.
    pub fn code(&self) -> &'static str {
        match self {
            CoordinatorError::NotLeader { .. } => "not_leader",
            CoordinatorError::NotDurable { .. } => "not_durable",
            CoordinatorError::Unavailable { .. } => "unavailable",
            CoordinatorError::EnginePanicked { .. } => "engine_panicked",
            CoordinatorError::Log(e) => e.code(),
            CoordinatorError::Recover(_) => "recover",
            CoordinatorError::PoisonedLog { .. } => "poisoned_log",
            CoordinatorError::Halted { .. } => "halted",
            CoordinatorError::NotInLog { .. } => "not_in_log",
            CoordinatorError::Refused { rejection, .. } => rejection.code(),
            CoordinatorError::InvalidConfig { .. } | CoordinatorError::InvalidEngineConfig(_) => {
                "invalid_config"
            }
            CoordinatorError::Stopped => "stopped",
        }
    }

    /// Whether the same request may succeed later, possibly at another coordinator.
    pub fn retryable(&self) -> bool {
        match self {
            CoordinatorError::NotLeader { .. }
            | CoordinatorError::NotDurable { .. }
            | CoordinatorError::Unavailable { .. }
            | CoordinatorError::Stopped => true,
            CoordinatorError::Log(e) => e.retryable(),
            CoordinatorError::EnginePanicked { .. }
            | CoordinatorError::Recover(_)
            | CoordinatorError::PoisonedLog { .. }
            | CoordinatorError::Halted { .. }
            | CoordinatorError::NotInLog { .. }
            | CoordinatorError::Refused { .. }
            | CoordinatorError::InvalidConfig { .. }
            | CoordinatorError::InvalidEngineConfig(_) => false,
        }
    }
}
