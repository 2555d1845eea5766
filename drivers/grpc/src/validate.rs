//! Checks on what workers and clients send, before anything reaches the engine. A
//! refusal names the field, so an author can see which part of the message was wrong.

use crate::convert::{fence_from_proto, suspend_timeout_from_proto};
use crate::proto;
use crate::proto::worker_command::Command as Wire;
use keel_engine::{
    check_name, ClientCommand, Fence, GrantId, InstanceId, JobError, JobId, Limits, Payload,
    TaskId, WorkerCommand, WorkerId,
};
use tonic::Status;

/// Longest failure message a worker may report.
pub const MAX_ERROR_BYTES: usize = 16 * 1024;
/// Longest progress message.
pub const MAX_PROGRESS_BYTES: usize = 1024;

/// INVALID_ARGUMENT naming `field`.
pub fn invalid(field: &str, why: &str) -> Status {
    Status::invalid_argument(format!("{field}: {why}"))
}

/// A session's command once checked: an engine command, or a progress report that the
/// service handles itself.
#[derive(Clone, Debug, PartialEq)]
pub enum Checked {
    /// A command for the engine.
    Engine(WorkerCommand),
    /// A progress report for the running attempt under `fence`.
    Progress {
        /// The attempt reporting.
        fence: Fence,
        /// Progress from 0 to 1000.
        per_mille: u32,
        /// Free text, within the server's limit.
        message: String,
    },
}

/// The identity a session registers with.
#[derive(Clone, Debug, PartialEq)]
pub struct Registration {
    /// The worker registering.
    pub worker: WorkerId,
    /// Its instance; the session's later commands carry it.
    pub instance: InstanceId,
    /// The engine's `Register` command.
    pub command: WorkerCommand,
}

/// Checks the session's first command, which must be `register`.
pub fn registration(cmd: &proto::WorkerCommand, limits: &Limits) -> Result<Registration, Status> {
    let Some(Wire::Register(r)) = &cmd.command else {
        return Err(invalid(
            "command",
            "the first command of a session must be register",
        ));
    };
    if r.worker_id.is_empty() {
        return Err(invalid("register.worker_id", "must not be empty"));
    }
    if r.worker_id.len() > limits.max_name_len as usize {
        return Err(invalid("register.worker_id", "is too long"));
    }
    if r.worker_id
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(invalid(
            "register.worker_id",
            "must not contain whitespace or control characters",
        ));
    }
    if r.instance == 0 {
        return Err(invalid("register.instance", "must be positive"));
    }
    if r.max_concurrency == 0 {
        return Err(invalid("register.max_concurrency", "must be positive"));
    }
    Ok(Registration {
        worker: WorkerId::new(r.worker_id.clone()),
        instance: InstanceId::new(r.instance),
        command: WorkerCommand::Register {
            capabilities: r.capabilities.clone(),
            lanes: r.lanes.clone(),
            max_concurrency: r.max_concurrency,
        },
    })
}

fn fence(field: &str, f: &Option<proto::Fence>) -> Result<Fence, Status> {
    match f {
        Some(f) if f.attempt > 0 => Ok(fence_from_proto(f)),
        Some(_) => Err(invalid(
            &format!("{field}.fence.attempt"),
            "must be positive",
        )),
        None => Err(invalid(&format!("{field}.fence"), "is required")),
    }
}

/// A name the engine would refuse (empty, too long, control characters), refused here
/// under the wire field's name.
fn name(field: &str, value: &str, limits: &Limits) -> Result<(), Status> {
    match check_name("name", value, limits.max_name_len) {
        Ok(()) => Ok(()),
        Err(JobError::BadName { why, .. }) => Err(invalid(field, &why)),
        Err(other) => Err(invalid(field, &other.to_string())),
    }
}

fn suspend(wire: proto::Suspend, limits: &Limits) -> Result<WorkerCommand, Status> {
    let fence = fence("suspend", &wire.fence)?;
    name("suspend.waitpoint", &wire.waitpoint, limits)?;
    if wire.timeout_ms == Some(0) {
        return Err(invalid("suspend.timeout_ms", "must be positive when set"));
    }
    let on_timeout = suspend_timeout_from_proto(wire.on_timeout)
        .ok_or_else(|| invalid("suspend.on_timeout", "is not a known value"))?;
    Ok(WorkerCommand::Suspend {
        fence,
        waitpoint: wire.waitpoint,
        timeout_ms: wire.timeout_ms,
        on_timeout,
    })
}

/// A usage report with its fence and names present; the engine resolves the budget.
fn report_usage(wire: proto::ReportUsage, limits: &Limits) -> Result<WorkerCommand, Status> {
    let fence = fence("report_usage", &wire.fence)?;
    name("report_usage.budget", &wire.budget, limits)?;
    name("report_usage.dimension", &wire.dimension, limits)?;
    name("report_usage.dedup_key", &wire.dedup_key, limits)?;
    Ok(WorkerCommand::ReportUsage {
        fence,
        budget: wire.budget,
        dimension: wire.dimension,
        amount: wire.amount,
        dedup_key: wire.dedup_key,
    })
}

/// An acknowledgement with its fence present and the producer's key a valid name.
fn ack(wire: proto::Ack, limits: &Limits) -> Result<WorkerCommand, Status> {
    name("ack.from", &wire.from, limits)?;
    Ok(WorkerCommand::Ack {
        fence: fence("ack", &wire.fence)?,
        from: wire.from,
        cursor: wire.cursor,
    })
}

/// Frames one emit may carry. Empty frames cost a worker two bytes each on the wire
/// but a few dozen once decoded and logged, so a message full of them is refused here,
/// before it is logged, rather than by the stream's byte limit after.
pub const MAX_FRAMES_PER_EMIT: usize = 65_536;

/// An emit with its fence present and at most [`MAX_FRAMES_PER_EMIT`] frames. Frames
/// over the payload limit go to the engine, which refuses them naming the limit and
/// keeps the attempt running.
fn emit(wire: proto::Emit) -> Result<WorkerCommand, Status> {
    if wire.frames.len() > MAX_FRAMES_PER_EMIT {
        let why = format!(
            "holds {} frames; one emit carries at most {MAX_FRAMES_PER_EMIT}",
            wire.frames.len()
        );
        return Err(invalid("emit.frames", &why));
    }
    Ok(WorkerCommand::Emit {
        fence: fence("emit", &wire.fence)?,
        from: wire.from,
        frames: wire.frames.into_iter().map(Payload::from).collect(),
    })
}

/// A signal request once checked: the engine command and the job its task must be in.
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    /// The job the request names; the task must belong to it.
    pub job: JobId,
    /// The task signalled.
    pub task: TaskId,
    /// The engine's `Signal` command.
    pub command: ClientCommand,
}

/// Checks a `SignalTask` request.
pub fn signal(r: proto::SignalTaskRequest, limits: &Limits) -> Result<Signal, Status> {
    if r.job == 0 {
        return Err(invalid("job", "is required"));
    }
    if r.task == 0 {
        return Err(invalid("task", "is required"));
    }
    name("waitpoint", &r.waitpoint, limits)?;
    name("idempotency_key", &r.idempotency_key, limits)?;
    let task = TaskId::new(r.task);
    Ok(Signal {
        job: JobId::new(r.job),
        task,
        command: ClientCommand::Signal {
            task,
            waitpoint: r.waitpoint,
            idempotency_key: r.idempotency_key,
            payload: Payload::from(r.payload),
        },
    })
}

/// Checks a command after registration.
pub fn command(cmd: proto::WorkerCommand, limits: &Limits) -> Result<Checked, Status> {
    let engine = |c: WorkerCommand| Ok(Checked::Engine(c));
    match cmd.command {
        None => Err(invalid("command", "must be set")),
        Some(Wire::Register(_)) => Err(invalid("register", "the session is already registered")),
        Some(Wire::Heartbeat(_)) => engine(WorkerCommand::Heartbeat),
        Some(Wire::RequestWork(r)) => {
            if r.credits > limits.max_pending_grants_per_worker {
                return Err(invalid(
                    "request_work.credits",
                    "exceeds the pending grant limit",
                ));
            }
            engine(WorkerCommand::RequestWork { credits: r.credits })
        }
        Some(Wire::Drain(_)) => engine(WorkerCommand::Drain),
        Some(Wire::Deregister(_)) => engine(WorkerCommand::Deregister),
        Some(Wire::AcceptGrant(g)) => engine(WorkerCommand::AcceptGrant {
            grant: GrantId::new(g.grant),
        }),
        Some(Wire::ReleaseGrant(g)) => engine(WorkerCommand::ReleaseGrant {
            grant: GrantId::new(g.grant),
        }),
        Some(Wire::Renew(r)) => engine(WorkerCommand::Renew {
            fence: fence("renew", &r.fence)?,
        }),
        Some(Wire::Complete(c)) => {
            let fence = fence("complete", &c.fence)?;
            // An output over the engine's limits goes to the engine, which fails the
            // attempt for good naming the limit; refused here as malformed, it would be
            // dropped by the worker and its task run again with the same result.
            engine(WorkerCommand::Complete {
                fence,
                output: Payload::from(c.output),
            })
        }
        Some(Wire::Fail(f)) => {
            let fence = fence("fail", &f.fence)?;
            if f.error.len() > MAX_ERROR_BYTES {
                return Err(invalid("fail.error", "is longer than 16 KiB"));
            }
            engine(WorkerCommand::Fail {
                fence,
                error: f.error,
                permanent: f.permanent,
            })
        }
        Some(Wire::Suspend(s)) => engine(suspend(s, limits)?),
        Some(Wire::ReportUsage(r)) => engine(report_usage(r, limits)?),
        Some(Wire::Emit(e)) => engine(emit(e)?),
        Some(Wire::Ack(a)) => engine(ack(a, limits)?),
        Some(Wire::Progress(p)) => {
            let fence = fence("progress", &p.fence)?;
            if p.done_per_mille > 1000 {
                return Err(invalid("progress.done_per_mille", "must be at most 1000"));
            }
            if p.message.len() > MAX_PROGRESS_BYTES {
                return Err(invalid("progress.message", "is longer than 1 KiB"));
            }
            Ok(Checked::Progress {
                fence,
                per_mille: p.done_per_mille,
                message: p.message,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(command: Wire) -> proto::WorkerCommand {
        proto::WorkerCommand {
            seq: 1,
            command: Some(command),
        }
    }

    #[test]
    fn a_session_must_start_with_a_named_registration() {
        let limits = Limits::default();
        let err = registration(&wire(Wire::Heartbeat(proto::Heartbeat {})), &limits).unwrap_err();
        assert!(err.message().contains("register"));
        let reg = proto::Register {
            worker_id: "".into(),
            instance: 1,
            max_concurrency: 1,
            ..Default::default()
        };
        let err = registration(&wire(Wire::Register(reg)), &limits).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().starts_with("register.worker_id"));
    }

    #[test]
    fn a_completion_without_a_fence_is_refused_naming_the_field() {
        let err = command(
            wire(Wire::Complete(proto::Complete::default())),
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(err.message(), "complete.fence: is required");
    }

    #[test]
    fn a_suspension_names_its_bad_field() {
        let limits = Limits::default();
        let fence = Some(proto::Fence {
            task: 1,
            attempt: 1,
            epoch: 1,
        });
        let bad = [
            (proto::Suspend::default(), "suspend.fence: is required"),
            (
                proto::Suspend {
                    fence,
                    ..Default::default()
                },
                "suspend.waitpoint: empty",
            ),
            (
                proto::Suspend {
                    fence,
                    waitpoint: "approval".into(),
                    timeout_ms: Some(0),
                    ..Default::default()
                },
                "suspend.timeout_ms: must be positive when set",
            ),
            (
                proto::Suspend {
                    fence,
                    waitpoint: "approval".into(),
                    on_timeout: 9,
                    ..Default::default()
                },
                "suspend.on_timeout: is not a known value",
            ),
        ];
        for (suspend, message) in bad {
            let err = command(wire(Wire::Suspend(suspend)), &limits).unwrap_err();
            assert_eq!(
                (err.code(), err.message()),
                (tonic::Code::InvalidArgument, message)
            );
        }
        let ok = proto::Suspend {
            fence,
            waitpoint: "approval".into(),
            timeout_ms: Some(5),
            on_timeout: proto::SuspendTimeout::Resume as i32,
        };
        assert_eq!(
            command(wire(Wire::Suspend(ok)), &limits).unwrap(),
            Checked::Engine(WorkerCommand::Suspend {
                fence: Fence {
                    task: TaskId::new(1),
                    attempt: 1,
                    epoch: 1
                },
                waitpoint: "approval".into(),
                timeout_ms: Some(5),
                on_timeout: keel_engine::SuspendTimeout::Resume,
            })
        );
    }

    #[test]
    fn a_usage_report_needs_a_fence_and_names() {
        let limits = Limits::default();
        let good = proto::ReportUsage {
            fence: Some(proto::Fence {
                task: 3,
                attempt: 1,
                epoch: 2,
            }),
            budget: "llm".into(),
            dimension: "tokens".into(),
            amount: 40,
            dedup_key: "call-1".into(),
        };
        assert_eq!(
            command(wire(Wire::ReportUsage(good.clone())), &limits).unwrap(),
            Checked::Engine(WorkerCommand::ReportUsage {
                fence: Fence {
                    task: TaskId::new(3),
                    attempt: 1,
                    epoch: 2
                },
                budget: "llm".into(),
                dimension: "tokens".into(),
                amount: 40,
                dedup_key: "call-1".into(),
            })
        );
        let cases = [
            (
                proto::ReportUsage {
                    fence: None,
                    ..good.clone()
                },
                "report_usage.fence: is required",
            ),
            (
                proto::ReportUsage {
                    budget: String::new(),
                    ..good.clone()
                },
                "report_usage.budget: empty",
            ),
            (
                proto::ReportUsage {
                    dedup_key: "a\nb".into(),
                    ..good.clone()
                },
                "report_usage.dedup_key: contains a control character",
            ),
        ];
        for (report, message) in cases {
            let err = command(wire(Wire::ReportUsage(report)), &limits).unwrap_err();
            assert_eq!(err.message(), message);
        }
    }

    #[test]
    fn a_signal_needs_a_job_a_task_a_waitpoint_and_a_key() {
        let limits = Limits::default();
        let good = proto::SignalTaskRequest {
            job: 1,
            task: 2,
            waitpoint: "approval".into(),
            idempotency_key: "k1".into(),
            payload: b"yes".to_vec(),
        };
        let checked = signal(good.clone(), &limits).unwrap();
        assert_eq!(checked.task, TaskId::new(2));
        assert!(matches!(
            checked.command,
            ClientCommand::Signal { ref payload, .. } if payload.0[..] == b"yes"[..]
        ));
        let cases = [
            (
                proto::SignalTaskRequest {
                    job: 0,
                    ..good.clone()
                },
                "job: is required",
            ),
            (
                proto::SignalTaskRequest {
                    task: 0,
                    ..good.clone()
                },
                "task: is required",
            ),
            (
                proto::SignalTaskRequest {
                    waitpoint: String::new(),
                    ..good.clone()
                },
                "waitpoint: empty",
            ),
            (
                proto::SignalTaskRequest {
                    idempotency_key: "a\nb".into(),
                    ..good.clone()
                },
                "idempotency_key: contains a control character",
            ),
        ];
        for (request, message) in cases {
            let err = signal(request, &limits).unwrap_err();
            assert_eq!(
                (err.code(), err.message()),
                (tonic::Code::InvalidArgument, message)
            );
        }
    }

    #[test]
    fn credits_are_bounded_by_the_pending_grant_limit() {
        let limits = Limits::default();
        let ok = command(
            wire(Wire::RequestWork(proto::RequestWork { credits: 8 })),
            &limits,
        );
        assert_eq!(
            ok.unwrap(),
            Checked::Engine(WorkerCommand::RequestWork { credits: 8 })
        );
        let too_many = proto::RequestWork {
            credits: limits.max_pending_grants_per_worker + 1,
        };
        assert!(command(wire(Wire::RequestWork(too_many)), &limits).is_err());
    }

    #[test]
    fn an_emit_of_too_many_frames_is_refused_before_the_engine() {
        let fence = Some(proto::Fence {
            task: 1,
            attempt: 1,
            epoch: 1,
        });
        let emit = |frames: usize| {
            let e = proto::Emit {
                fence,
                from: 0,
                frames: vec![Vec::new(); frames],
            };
            command(wire(Wire::Emit(e)), &Limits::default())
        };
        assert!(matches!(
            emit(MAX_FRAMES_PER_EMIT),
            Ok(Checked::Engine(WorkerCommand::Emit { .. }))
        ));
        let err = emit(MAX_FRAMES_PER_EMIT + 1).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            err.message(),
            "emit.frames: holds 65537 frames; one emit carries at most 65536"
        );
    }
}
