//! What kind of trouble the log is in, as far as a caller and an operator care: out of
//! space, out of reach, or failing some other way. The log reports storage failures as
//! messages; this reads them until the log classifies its errors itself.

use keel_log::LogError;
use std::fmt;

/// Why the log could not make an input durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreFault {
    /// The disk (or Valkey's memory or append-only file) is full.
    NoSpace,
    /// The store cannot be reached: refused, reset or timed-out connections, or a
    /// server still loading its data.
    Unreachable,
    /// Any other failure to store.
    Failed,
}

impl fmt::Display for StoreFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreFault::NoSpace => "no space left in the log's storage",
            StoreFault::Unreachable => "the log's store is unreachable",
            StoreFault::Failed => "the log failed to store it",
        })
    }
}

/// Message fragments (lower case) that mean the store is full.
const NO_SPACE: [&str; 5] = [
    "no space left",
    "os error 28",
    "enospc",
    "oom command not allowed",
    "disk quota exceeded",
];

/// Message fragments (lower case) that mean the store is out of reach for now.
const UNREACHABLE: [&str; 10] = [
    "connection refused",
    "connection reset",
    "broken pipe",
    "timed out",
    "timeout",
    "not connected",
    "connection closed",
    "io error",
    "loading",
    "tryagain",
];

impl StoreFault {
    /// Classifies a log error by what it says.
    pub fn of(error: &LogError) -> StoreFault {
        match error {
            LogError::Storage { message, .. } => StoreFault::from_message(message),
            LogError::ReplicaTimeout { .. } => StoreFault::Unreachable,
            _ => StoreFault::Failed,
        }
    }

    /// Classifies a coordinator error that came from the log.
    pub fn of_coordinator(error: &crate::CoordinatorError) -> StoreFault {
        match error {
            crate::CoordinatorError::Log(e)
            | crate::CoordinatorError::Recover(keel_log::RecoverError::Log(e)) => StoreFault::of(e),
            _ => StoreFault::Failed,
        }
    }

    fn from_message(message: &str) -> StoreFault {
        let message = message.to_lowercase();
        if NO_SPACE.iter().any(|m| message.contains(m)) {
            StoreFault::NoSpace
        } else if UNREACHABLE.iter().any(|m| message.contains(m)) {
            StoreFault::Unreachable
        } else {
            StoreFault::Failed
        }
    }
}

/// The commit pipeline's name for a fault.
pub(crate) fn to_protocol(fault: StoreFault) -> keel_protocol::commit::Fault {
    use keel_protocol::commit::Fault;
    match fault {
        StoreFault::NoSpace => Fault::NoSpace,
        StoreFault::Unreachable => Fault::Unreachable,
        StoreFault::Failed => Fault::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_messages_are_classified() {
        let of = |m: &str| StoreFault::of(&LogError::storage(0, m));
        assert_eq!(
            of("No space left on device (os error 28)"),
            StoreFault::NoSpace
        );
        assert_eq!(
            of("MISCONF Errors writing to the AOF file: No space left on device"),
            StoreFault::NoSpace
        );
        assert_eq!(
            of("OOM command not allowed when used memory > 'maxmemory'"),
            StoreFault::NoSpace
        );
        assert_eq!(
            of("Connection refused (os error 111)"),
            StoreFault::Unreachable
        );
        assert_eq!(of("broken pipe"), StoreFault::Unreachable);
        assert_eq!(of("disk on fire"), StoreFault::Failed);
        let fenced = LogError::Fenced {
            partition: 0,
            epoch: 1,
            current: 2,
        };
        assert_eq!(StoreFault::of(&fenced), StoreFault::Failed);
    }
}
