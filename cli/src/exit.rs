//! Exit statuses of the commands that talk to a coordinator. They are part of the
//! command line's interface: scripts branch on them, so the numbers never change.

use keel_grpc::client::{CallError, ClientError};
use std::process::ExitCode;
use tonic::Code;

/// What a command's exit status says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The job succeeded, is still running (`keel status`), or the command did what
    /// it was asked.
    Ok = 0,
    /// Anything else went wrong: a bad file, a refused request.
    Error = 1,
    // 2 is clap's: the command line itself was wrong.
    /// The job failed.
    Failed = 3,
    /// The job was cancelled.
    Cancelled = 4,
    /// The job ran past its deadline.
    DeadlineExceeded = 5,
    /// No such job (never submitted, or forgotten after its retention).
    NotFound = 6,
    /// No coordinator could be reached, or none leads.
    Unreachable = 7,
    /// `--timeout` ran out while waiting; the job keeps running.
    TimedOut = 8,
}

/// The table `--help` and README show.
pub const EXIT_CODES: &str = "Exit status: 0 succeeded (or still running, for `keel status`), \
1 other error, 2 bad command line, 3 failed, 4 cancelled, 5 deadline exceeded, \
6 job or schedule not found, 7 coordinator unreachable, 8 --timeout reached (the job keeps running), \
141 output closed.";

impl Exit {
    /// The status for a job outcome word ("" while it runs).
    pub fn of_outcome(outcome: &str) -> Exit {
        match outcome {
            "" | "succeeded" => Exit::Ok,
            "cancelled" => Exit::Cancelled,
            "deadline_exceeded" => Exit::DeadlineExceeded,
            _ => Exit::Failed,
        }
    }

    pub fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// A command's failure: what to print and which status to exit with.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }

    /// An error with no more specific status.
    pub fn error(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Error, message)
    }

    /// Prints `keel <command>: <message>` (each line escaped, the line breaks of a
    /// located error report kept) and returns the exit status.
    pub fn report(&self, command: &str) -> ExitCode {
        let text = crate::output::safe_lines(&self.message);
        crate::output::errln!("keel {command}: {}", text.trim_end_matches('\n'));
        self.exit.code()
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        let exit = match e {
            ClientError::Unreachable(_) => Exit::Unreachable,
            _ => Exit::Error,
        };
        Failure::new(exit, e.to_string())
    }
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Failure {
        let exit = match &e {
            CallError::Connect(ClientError::Unreachable(_)) => Exit::Unreachable,
            CallError::Connect(_) => Exit::Error,
            CallError::Status { status, .. } if status.code() == Code::NotFound => Exit::NotFound,
            // UNAVAILABLE, or a broken connection (a transport error under the status).
            CallError::Status { status, .. }
                if status.code() == Code::Unavailable
                    || std::error::Error::source(status).is_some() =>
            {
                Exit::Unreachable
            }
            CallError::Status { .. } => Exit::Error,
        };
        Failure::new(exit, e.to_string())
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::error(message)
    }
}

/// `Ok(exit)` as its status, a failure reported under `command`.
pub fn finish(command: &str, result: Result<Exit, Failure>) -> ExitCode {
    match result {
        Ok(exit) => exit.code(),
        Err(f) => f.report(command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_grpc::client::{AddressError, Cause, Unreachable};
    use tonic::Status;

    #[test]
    fn outcomes_map_to_their_statuses() {
        assert_eq!(Exit::of_outcome(""), Exit::Ok);
        assert_eq!(Exit::of_outcome("succeeded"), Exit::Ok);
        assert_eq!(Exit::of_outcome("failed"), Exit::Failed);
        assert_eq!(Exit::of_outcome("cancelled"), Exit::Cancelled);
        assert_eq!(
            Exit::of_outcome("deadline_exceeded"),
            Exit::DeadlineExceeded
        );
        assert_eq!(Exit::of_outcome("something new"), Exit::Failed);
    }

    #[test]
    fn call_errors_map_to_not_found_unreachable_or_error() {
        let status = |status: Status| {
            Failure::from(CallError::Status {
                address: "a".into(),
                status,
            })
            .exit
        };
        assert_eq!(status(Status::not_found("unknown_job")), Exit::NotFound);
        assert_eq!(status(Status::unavailable("not_leader")), Exit::Unreachable);
        assert_eq!(status(Status::invalid_argument("x")), Exit::Error);
        let unreachable = ClientError::Unreachable(Unreachable {
            tried: vec![AddressError {
                address: "127.0.0.1:1".into(),
                cause: Cause::Other("refused".into()),
            }],
        });
        assert_eq!(
            Failure::from(CallError::Connect(unreachable)).exit,
            Exit::Unreachable
        );
        assert_eq!(
            Failure::from(CallError::Connect(ClientError::Token)).exit,
            Exit::Error
        );
    }

    #[test]
    fn the_help_text_names_every_status() {
        for exit in [
            Exit::Ok,
            Exit::Error,
            Exit::Failed,
            Exit::Cancelled,
            Exit::DeadlineExceeded,
            Exit::NotFound,
            Exit::Unreachable,
            Exit::TimedOut,
        ] {
            assert!(
                EXIT_CODES.contains(&format!("{} ", exit as u8)),
                "{exit:?} is missing from the help"
            );
        }
    }
}
