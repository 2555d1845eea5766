//! Dead-letter replay through the coordinator: submit again, as a new job, what a
//! finished job did not succeed at. Every front end (the web console, a command line)
//! calls this one operation, so they all make the same job.

use crate::error::CoordinatorError;
use crate::handle::Handle;
use keel_engine::{
    Accepted, ClientCommand, Input, JobId, JobSpec, Rejection, RetryRefusal, TaskId,
};

/// The job a retry made, or found: retrying the same job again while its retry job
/// lives answers that job with `duplicate` set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retried {
    /// The retry job.
    pub job: JobId,
    /// Its name, which links it to the job it retries.
    pub name: String,
    /// Its first task's id.
    pub first_task: TaskId,
    /// How many tasks it has.
    pub tasks: u32,
    /// The retry job already existed; nothing new was submitted.
    pub duplicate: bool,
    /// The spec submitted: the tasks that did not succeed, under the retry's name.
    pub spec: JobSpec,
}

/// Why a retry made no job.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// The old job cannot be retried (unknown, still running, nothing failed).
    #[error(transparent)]
    Refused(RetryRefusal),
    /// The engine refused the new job (e.g. its name is taken by another spec).
    #[error("the retry job was refused: {0}")]
    Rejected(Rejection),
    /// The coordinator could not take the submission (not leader, not durable).
    #[error(transparent)]
    Coordinator(CoordinatorError),
    /// The engine accepted the submission with an answer other than a job; a bug.
    #[error("the engine answered the retry with {0}")]
    Unexpected(String),
}

impl RetryError {
    /// A stable name for wire protocols and messages.
    pub fn code(&self) -> &'static str {
        match self {
            RetryError::Refused(r) => r.code(),
            RetryError::Rejected(r) => r.code(),
            RetryError::Coordinator(e) => e.code(),
            RetryError::Unexpected(_) => "unexpected_reply",
        }
    }
}

impl Handle {
    /// Submits the failed, cancelled and skipped tasks of finished job `job` as a new
    /// job ([`keel_engine::Engine::retry_spec`]). The spec is read from durable state;
    /// the old job is finished, so it cannot change between the read and the submit.
    pub async fn retry_job(&self, job: JobId) -> Result<Retried, RetryError> {
        let spec = self
            .read(move |engine| engine.retry_spec(job))
            .await
            .map_err(RetryError::Coordinator)?
            .map_err(RetryError::Refused)?;
        let name = spec.name.clone();
        match self
            .apply(Input::Client(ClientCommand::SubmitJob(spec.clone())))
            .await
        {
            Ok(Some(Ok(Accepted::JobSubmitted {
                job,
                first_task,
                tasks,
                duplicate,
            }))) => Ok(Retried {
                job,
                name,
                first_task,
                tasks,
                duplicate,
                spec,
            }),
            Ok(Some(Err(rejection))) => Err(RetryError::Rejected(rejection)),
            Ok(other) => Err(RetryError::Unexpected(format!("{other:?}"))),
            Err(e) => Err(RetryError::Coordinator(e)),
        }
    }
}
