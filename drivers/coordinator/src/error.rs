//! Typed failures of the coordinator. Each says whether an input may have been
//! recorded, so a caller knows whether retrying it elsewhere is safe.

use keel_log::{Epoch, LogError, Partition, RecoverError};
use std::fmt;

/// Why a coordinator stopped leading its partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deposed {
    /// Another coordinator took the partition; the log's epoch is now `current`.
    Fenced { current: Epoch },
    /// The lease ran out before it could be renewed.
    LeaseLapsed,
    /// The log failed to store a batch or a snapshot; the engine, now ahead of the log,
    /// was discarded.
    StorageFailed,
}

impl fmt::Display for Deposed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Deposed::Fenced { current } => write!(f, "fenced by epoch {current}"),
            Deposed::LeaseLapsed => f.write_str("its lease lapsed"),
            Deposed::StorageFailed => f.write_str("the log failed to store a write"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// This coordinator does not lead the partition. Nothing of the refused input was
    /// recorded; another coordinator may serve it.
    #[error("partition {partition}: not the leader (epoch {epoch}, {why})")]
    NotLeader {
        partition: Partition,
        epoch: Epoch,
        why: Deposed,
    },
    /// The batch holding the input failed to append. It may or may not have been
    /// recorded (a store can fail after writing), and this coordinator stopped serving.
    #[error("partition {partition}: the input's batch failed to append and may or may not be recorded ({code}: {message})")]
    NotDurable {
        partition: Partition,
        code: &'static str,
        message: String,
    },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Recover(#[from] RecoverError),
    #[error("invalid coordinator config: {field} {problem}")]
    InvalidConfig {
        field: &'static str,
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
            CoordinatorError::Log(e) => e.code(),
            CoordinatorError::Recover(_) => "recover",
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
            | CoordinatorError::Stopped => true,
            CoordinatorError::Log(e) => e.retryable(),
            CoordinatorError::Recover(_)
            | CoordinatorError::InvalidConfig { .. }
            | CoordinatorError::InvalidEngineConfig(_) => false,
        }
    }
}
