//! Turning what redb reports (errors, and panics on files it cannot make sense of) into
//! typed [`LogError`]s that name the file.

use super::disk::is_no_space;
use super::open::OpenError;
use crate::error::{LogError, Outcome};
use crate::Partition;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Why a call on the database failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A typed refusal of the log itself (fenced, offset mismatch, a corrupt record).
    Log(LogError),
    Redb(redb::Error),
    /// redb panicked; the message of the panic.
    Panic(String),
    /// Opening the database again after a failure failed.
    Reopen(OpenError),
}

impl From<LogError> for Failure {
    fn from(e: LogError) -> Failure {
        Failure::Log(e)
    }
}

macro_rules! from_redb {
    ($($error:ty),*) => {$(
        impl From<$error> for Failure {
            fn from(e: $error) -> Failure {
                Failure::Redb(e.into())
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::StorageError,
    redb::TransactionError,
    redb::TableError,
    redb::CommitError,
    redb::DatabaseError
);

impl Failure {
    /// Whether the database must be closed and opened again before further use: redb
    /// refuses writes after a failed commit until then, and after a panic nothing it
    /// holds in memory can be trusted.
    pub(crate) fn needs_reopen(&self) -> bool {
        !matches!(self, Failure::Log(_))
    }

    /// The typed error for a failed call on `partition` of the log in `path`. A full
    /// disk (`no_space`: the backend saw one) is reported with `outcome`; other storage
    /// failures leave it unknown.
    pub(crate) fn into_log_error(
        self,
        partition: Partition,
        path: &Path,
        no_space: bool,
        outcome: Outcome,
    ) -> LogError {
        let store = path.display().to_string();
        match self {
            Failure::Log(e) => e.located(&store),
            Failure::Panic(message) => LogError::Damaged {
                store,
                problem: format!("redb panicked reading it: {message}"),
            },
            Failure::Redb(redb::Error::Corrupted(problem)) => LogError::Damaged { store, problem },
            Failure::Redb(redb::Error::Io(e)) if no_space || is_no_space(&e) => LogError::NoSpace {
                partition,
                store,
                outcome,
            },
            Failure::Redb(redb::Error::PreviousIo) if no_space => LogError::NoSpace {
                partition,
                store,
                outcome,
            },
            Failure::Reopen(OpenError::NoSpace { .. }) => LogError::NoSpace {
                partition,
                store,
                outcome,
            },
            Failure::Reopen(OpenError::Damaged { problem, .. }) => {
                LogError::Damaged { store, problem }
            }
            Failure::Reopen(e) => LogError::storage(partition, format!("reopening: {e}")),
            Failure::Redb(e) => LogError::storage(partition, format!("{store}: {e}")),
        }
    }
}

/// Runs `f`, turning a panic inside it into [`Failure::Panic`].
pub(crate) fn contain<T>(f: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(Failure::Panic(text(&payload))))
}

/// The message a panic was raised with.
pub(crate) fn text(payload: &Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
