//! How engine rejections and malformed requests become gRPC statuses. Every status
//! carries the rejection's stable code, so clients can match on it, and its message.

use crate::proto::Refusal;
use keel_coordinator::RetryError;
use keel_engine::{Rejection, RetryRefusal};
use prost::Message;
use tonic::{Code, Status};

/// The stable code of a refusal by one of the server's own limits (sessions, watches,
/// message size, a session's queue); the message names the limit and its value.
pub const LIMIT_REACHED: &str = "limit_reached";

/// The gRPC code a rejection maps to.
pub fn code_of(rejection: &Rejection) -> Code {
    match rejection {
        Rejection::StaleFence { .. }
        | Rejection::NotLeaseHolder { .. }
        | Rejection::StaleInstance { .. }
        | Rejection::WorkerLost { .. }
        | Rejection::GrantNotYours { .. }
        | Rejection::NotWaiting { .. }
        | Rejection::StreamGap { .. }
        | Rejection::AckPastEnd { .. }
        | Rejection::RegistrationConflict { .. } => Code::FailedPrecondition,
        Rejection::InvalidJob(_)
        | Rejection::InvalidWorker { .. }
        | Rejection::CapabilityToken { .. }
        | Rejection::InvalidName { .. }
        | Rejection::InvalidConfig { .. }
        | Rejection::InvalidSchedule { .. }
        | Rejection::InvalidUsage { .. } => Code::InvalidArgument,
        Rejection::UnknownJob { .. }
        | Rejection::UnknownTask { .. }
        | Rejection::UnknownWorker { .. }
        | Rejection::UnknownGrant { .. }
        | Rejection::UnknownSchedule { .. }
        | Rejection::UnknownBudget { .. }
        | Rejection::UnknownEdge { .. } => Code::NotFound,
        Rejection::JobNameConflict { .. } | Rejection::ScheduleNameConflict { .. } => {
            Code::AlreadyExists
        }
        Rejection::TenantJobLimit { .. }
        | Rejection::TooManyWorkers { .. }
        | Rejection::TooManySignals { .. }
        | Rejection::TooLarge { .. }
        | Rejection::LimitReached { .. }
        | Rejection::OutputOverLimit { .. }
        | Rejection::StreamOverLimit { .. }
        | Rejection::StreamFull { .. } => Code::ResourceExhausted,
    }
}

/// `"<code>: <message>"`, the text every refusal shows.
pub fn message_of(rejection: &Rejection) -> String {
    format!("{}: {rejection}", rejection.code())
}

/// The status a rejection ends a call with. Its details hold the same `Refusal` a
/// session reply would carry, so a caller can read typed fields such as the current
/// instance of a worker without parsing the message.
pub fn rejection_status(rejection: &Rejection) -> Status {
    let details = refusal(rejection).encode_to_vec();
    Status::with_details(code_of(rejection), message_of(rejection), details.into())
}

/// The status a refused retry ends a call with; like [`rejection_status`], its message
/// starts with the stable reason and its details carry a `Refusal`.
pub fn retry_status(error: &RetryError) -> Status {
    let code = match error {
        RetryError::Refused(RetryRefusal::UnknownJob { .. }) => Code::NotFound,
        RetryError::Refused(_) => Code::FailedPrecondition,
        RetryError::Rejected(rejection) => return rejection_status(rejection),
        RetryError::Coordinator(_) => Code::Unavailable,
        RetryError::Unexpected(_) => Code::Internal,
    };
    let message = format!("{}: {error}", error.code());
    let details = Refusal {
        status: code as i32,
        reason: error.code().to_string(),
        message: message.clone(),
        current_instance: None,
    };
    Status::with_details(code, message, details.encode_to_vec().into())
}

/// The typed refusal a worker receives for an engine rejection (its stable code, and
/// the current instance for a stale one).
pub fn refusal(rejection: &Rejection) -> Refusal {
    let current_instance = match rejection {
        Rejection::StaleInstance { current, .. } => Some(current.get()),
        _ => None,
    };
    Refusal {
        status: code_of(rejection) as i32,
        reason: rejection.code().to_string(),
        message: message_of(rejection),
        current_instance,
    }
}

/// The `Refusal` a status carries in its details, if it carries one.
pub fn refusal_of(status: &Status) -> Option<Refusal> {
    if status.details().is_empty() {
        return None;
    }
    Refusal::decode(status.details()).ok()
}

/// RESOURCE_EXHAUSTED naming the server limit `limit` and its `value`.
pub fn limit_reached(limit: &str, value: u64, what: &str) -> Status {
    Status::resource_exhausted(format!("{LIMIT_REACHED}: {limit} = {value}: {what}"))
}

/// tonic refuses a message over its size limit with OUT_OF_RANGE and a text of its own;
/// this is that refusal as RESOURCE_EXHAUSTED naming the setting (`max_message_bytes`),
/// or `None` for any other status. `what` names the message (`worker frame`, `request`).
pub fn oversized(status: &Status, what: &str) -> Option<Status> {
    if status.code() != Code::OutOfRange {
        return None;
    }
    let text = status.message();
    let rest = text.strip_prefix("Error, decoded message length too large: found ")?;
    let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
    let limit = rest.strip_suffix(" bytes")?;
    let (found, limit): (u64, u64) = (found.parse().ok()?, limit.parse().ok()?);
    Some(limit_reached(
        "max_message_bytes",
        limit,
        &format!("a {what} of {found} bytes is larger than the coordinator accepts"),
    ))
}

/// A refusal of a malformed command, before it reaches the engine.
pub fn invalid_refusal(status: &Status) -> Refusal {
    Refusal {
        status: status.code() as i32,
        reason: "invalid_argument".to_string(),
        message: status.message().to_string(),
        current_instance: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{JobId, TaskId, WorkerId};

    #[test]
    fn fencing_refusals_are_failed_precondition_and_keep_their_code() {
        let stale = Rejection::StaleFence {
            task: TaskId::new(3),
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
            task: TaskId::new(3),
            worker: WorkerId::new("w"),
        };
        assert_eq!(code_of(&lost), Code::FailedPrecondition);
        assert_eq!(refusal(&lost).reason, "not_lease_holder");
    }

    #[test]
    fn a_stale_instance_names_the_current_one_in_its_details() {
        let stale = Rejection::StaleInstance {
            worker: WorkerId::new("w"),
            presented: keel_engine::InstanceId::new(3),
            current: keel_engine::InstanceId::new(9),
        };
        let status = rejection_status(&stale);
        assert_eq!(status.code(), Code::FailedPrecondition);
        let carried = refusal_of(&status).expect("the status carries its refusal");
        assert_eq!(carried.reason, "stale_instance");
        assert_eq!(carried.current_instance, Some(9));
        assert_eq!(refusal_of(&Status::unavailable("x")), None);
    }

    #[test]
    fn tonics_size_refusal_becomes_resource_exhausted_naming_the_setting() {
        let tonic = Status::out_of_range(
            "Error, decoded message length too large: found 20971576 bytes, the limit is: 16777216 bytes",
        );
        let named = oversized(&tonic, "request").expect("recognised");
        assert_eq!(named.code(), Code::ResourceExhausted);
        assert_eq!(
            named.message(),
            "limit_reached: max_message_bytes = 16777216: a request of 20971576 bytes is larger than the coordinator accepts"
        );
        assert!(oversized(&Status::out_of_range("deadline"), "request").is_none());
        assert!(oversized(&Status::internal("x"), "request").is_none());
    }

    #[test]
    fn budget_refusals_are_not_found_and_invalid_argument() {
        let unknown = Rejection::UnknownBudget {
            budget: "llm".into(),
        };
        let status = rejection_status(&unknown);
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "unknown_budget: unknown budget \"llm\"");
        let invalid = Rejection::InvalidUsage {
            problem: "attempts is counted by the engine, not reported".into(),
        };
        assert_eq!(code_of(&invalid), Code::InvalidArgument);
        assert_eq!(refusal(&invalid).reason, "invalid_usage");
    }

    #[test]
    fn unknown_ids_are_not_found_and_limits_resource_exhausted() {
        assert_eq!(
            code_of(&Rejection::UnknownJob { job: JobId::new(9) }),
            Code::NotFound
        );
        let limit = Rejection::TenantJobLimit {
            tenant: "t".into(),
            limit: 1,
        };
        assert_eq!(code_of(&limit), Code::ResourceExhausted);
        assert_eq!(refusal(&limit).reason, "tenant_job_limit");
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
