//! How engine rejections and malformed requests become gRPC statuses. Every status
//! carries the rejection's stable code, so clients can match on it, and its message.

use crate::proto::Refusal;
use keel_engine::Rejection;
use tonic::{Code, Status};

/// The gRPC code a rejection maps to.
pub fn code_of(rejection: &Rejection) -> Code {
    match rejection {
        Rejection::StaleFence { .. }
        | Rejection::NotLeaseHolder { .. }
        | Rejection::StaleInstance { .. }
        | Rejection::WorkerLost { .. }
        | Rejection::GrantNotYours { .. }
        | Rejection::NotWaiting { .. }
        | Rejection::RegistrationConflict { .. } => Code::FailedPrecondition,
        Rejection::InvalidJob(_)
        | Rejection::InvalidWorker { .. }
        | Rejection::CapabilityToken { .. }
        | Rejection::InvalidName { .. } => Code::InvalidArgument,
        Rejection::UnknownJob { .. }
        | Rejection::UnknownTask { .. }
        | Rejection::UnknownWorker { .. }
        | Rejection::UnknownGrant { .. } => Code::NotFound,
        Rejection::JobNameConflict { .. } => Code::AlreadyExists,
        Rejection::TenantJobLimit { .. }
        | Rejection::TooManyWorkers { .. }
        | Rejection::TooManySignals { .. }
        | Rejection::TooLarge { .. }
        | Rejection::LimitReached { .. } => Code::ResourceExhausted,
    }
}

/// `"<code>: <message>"`, the text every refusal shows.
pub fn message_of(rejection: &Rejection) -> String {
    format!("{}: {rejection}", rejection.code())
}

pub fn rejection_status(rejection: &Rejection) -> Status {
    Status::new(code_of(rejection), message_of(rejection))
}

pub fn refusal(rejection: &Rejection) -> Refusal {
    Refusal {
        status: code_of(rejection) as i32,
        reason: rejection.code().to_string(),
        message: message_of(rejection),
    }
}

/// A refusal of a malformed command, before it reaches the engine.
pub fn invalid_refusal(status: &Status) -> Refusal {
    Refusal {
        status: status.code() as i32,
        reason: "invalid_argument".to_string(),
        message: status.message().to_string(),
    }
}

/// The status a refusal stands for, as the SDK hands it to callers.
pub fn refusal_status(refusal: &Refusal) -> Status {
    Status::new(Code::from_i32(refusal.status), refusal.message.clone())
}

/// A refusal from a fencing check: the worker acts on an attempt it no longer holds.
pub fn is_fencing(refusal: &Refusal) -> bool {
    matches!(
        refusal.reason.as_str(),
        "stale_fence" | "not_lease_holder" | "stale_instance" | "worker_lost"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{JobId, TaskId, WorkerId};

    #[test]
    fn fencing_refusals_are_failed_precondition_and_keep_their_code() {
        let stale = Rejection::StaleFence {
            task: TaskId(3),
            attempt_seen: 1,
            epoch_seen: 1,
            attempt_current: 2,
            epoch_current: 2,
        };
        let status = rejection_status(&stale);
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status
            .message()
            .starts_with("stale_fence: stale fence on t3"));
        let lost = Rejection::NotLeaseHolder {
            task: TaskId(3),
            worker: WorkerId::new("w"),
        };
        assert_eq!(code_of(&lost), Code::FailedPrecondition);
        assert!(is_fencing(&refusal(&lost)));
    }

    #[test]
    fn unknown_ids_are_not_found_and_limits_resource_exhausted() {
        assert_eq!(
            code_of(&Rejection::UnknownJob { job: JobId(9) }),
            Code::NotFound
        );
        let limit = Rejection::TenantJobLimit {
            tenant: "t".into(),
            limit: 1,
        };
        assert_eq!(code_of(&limit), Code::ResourceExhausted);
        assert!(!is_fencing(&refusal(&limit)));
        let global = Rejection::LimitReached {
            limit: "max_stored_bytes".into(),
            value: 1 << 30,
        };
        let status = rejection_status(&global);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "limit_reached: limit max_stored_bytes (1073741824) reached"
        );
    }
}
