//! Conversions between the engine's types and `keel.v1` messages. Anything that comes
//! from the network is checked here for what the engine cannot see (missing messages,
//! unknown enum values, out-of-range numbers); the engine validates the rest.

use crate::proto;
use crate::proto::dep_group::{Kind, OnUnsatisfied};
use crate::validate::invalid;
use keel_engine::{
    Accepted, DepGroup, Effect, EndReason, Fence, GroupKind, JobOutcome, JobSpec, JobStatus,
    JobView, Payload, RetryPolicy, TaskId, TaskOutcome, TaskSpec, TaskStatus, TaskView,
    UnsatisfiedPolicy,
};
use tonic::Status;

pub fn job_spec_to_proto(spec: &JobSpec) -> proto::JobSpec {
    proto::JobSpec {
        name: spec.name.clone(),
        tenant: spec.tenant.clone(),
        lane: spec.lane.clone(),
        priority: spec.priority,
        deadline_ms: spec.deadline_ms,
        max_concurrency: spec.max_concurrency,
        tasks: spec.tasks.iter().map(task_to_proto).collect(),
    }
}

fn task_to_proto(t: &TaskSpec) -> proto::TaskSpec {
    proto::TaskSpec {
        key: t.key.clone(),
        payload: t.payload.as_bytes().to_vec(),
        capabilities: t.capabilities.clone(),
        deps: t.deps.as_ref().map(|d| {
            let (kind, quorum) = match d.kind {
                GroupKind::AllOf => (Kind::AllOf, 0),
                GroupKind::AnyOf => (Kind::AnyOf, 0),
                GroupKind::Quorum(k) => (Kind::Quorum, k),
            };
            proto::DepGroup {
                kind: kind as i32,
                quorum,
                upstream: d.upstream.clone(),
                on_unsatisfied: match d.on_unsatisfied {
                    UnsatisfiedPolicy::Skip => OnUnsatisfied::Skip,
                    UnsatisfiedPolicy::Cancel => OnUnsatisfied::Cancel,
                } as i32,
            }
        }),
        retry: Some(proto::RetryPolicy {
            max_attempts: t.retry.max_attempts,
            backoff_base_ms: t.retry.backoff_base_ms,
            backoff_factor: t.retry.backoff_factor,
            backoff_max_ms: t.retry.backoff_max_ms,
            jitter_pct: u32::from(t.retry.jitter_pct),
        }),
        attempt_timeout_ms: t.attempt_timeout_ms,
        delay_ms: t.delay_ms,
        priority: t.priority,
        allow_failure: t.allow_failure,
        estimated_ms: t.estimated_ms,
    }
}

/// The engine's job spec from the wire. A missing retry policy means the default one;
/// an unset dependency kind or policy is refused rather than guessed.
pub fn job_spec_from_proto(spec: proto::JobSpec) -> Result<JobSpec, Status> {
    let tasks = spec
        .tasks
        .into_iter()
        .enumerate()
        .map(|(i, t)| task_from_proto(i, t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(JobSpec {
        name: spec.name,
        tenant: non_empty_or(spec.tenant, "default"),
        lane: non_empty_or(spec.lane, "default"),
        priority: spec.priority,
        deadline_ms: spec.deadline_ms,
        max_concurrency: spec.max_concurrency,
        tasks,
    })
}

fn non_empty_or(value: String, default: &str) -> String {
    if value.is_empty() {
        default.to_string()
    } else {
        value
    }
}

fn task_from_proto(i: usize, t: proto::TaskSpec) -> Result<TaskSpec, Status> {
    let field = |name: &str| format!("spec.tasks[{i}].{name}");
    let deps = match t.deps {
        None => None,
        Some(d) => {
            let kind = match Kind::try_from(d.kind) {
                Ok(Kind::AllOf) => GroupKind::AllOf,
                Ok(Kind::AnyOf) => GroupKind::AnyOf,
                Ok(Kind::Quorum) => GroupKind::Quorum(d.quorum),
                _ => return Err(invalid(&field("deps.kind"), "must be set to a known kind")),
            };
            if !matches!(kind, GroupKind::Quorum(_)) && d.quorum != 0 {
                return Err(invalid(&field("deps.quorum"), "is only for KIND_QUORUM"));
            }
            let on_unsatisfied = match OnUnsatisfied::try_from(d.on_unsatisfied) {
                Ok(OnUnsatisfied::Unspecified) | Ok(OnUnsatisfied::Skip) => UnsatisfiedPolicy::Skip,
                Ok(OnUnsatisfied::Cancel) => UnsatisfiedPolicy::Cancel,
                Err(_) => return Err(invalid(&field("deps.on_unsatisfied"), "unknown value")),
            };
            Some(DepGroup {
                kind,
                upstream: d.upstream,
                on_unsatisfied,
            })
        }
    };
    let retry = match t.retry {
        None => RetryPolicy::default(),
        Some(r) => RetryPolicy {
            max_attempts: r.max_attempts,
            backoff_base_ms: r.backoff_base_ms,
            backoff_factor: r.backoff_factor,
            backoff_max_ms: r.backoff_max_ms,
            jitter_pct: u8::try_from(r.jitter_pct)
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| invalid(&field("retry.jitter_pct"), "must be at most 100"))?,
        },
    };
    Ok(TaskSpec {
        key: t.key,
        payload: Payload::from(t.payload),
        capabilities: t.capabilities,
        deps,
        retry,
        attempt_timeout_ms: t.attempt_timeout_ms,
        delay_ms: t.delay_ms,
        priority: t.priority,
        allow_failure: t.allow_failure,
        estimated_ms: t.estimated_ms,
    })
}

pub fn fence_to_proto(f: Fence) -> proto::Fence {
    proto::Fence {
        task: f.task.0,
        attempt: f.attempt,
        epoch: f.epoch,
    }
}

pub fn fence_from_proto(f: &proto::Fence) -> Fence {
    Fence {
        task: TaskId(f.task),
        attempt: f.attempt,
        epoch: f.epoch,
    }
}

pub fn end_reason(r: EndReason) -> proto::EndReason {
    use proto::EndReason as P;
    match r {
        EndReason::GrantExpired => P::GrantExpired,
        EndReason::GrantReleased => P::GrantReleased,
        EndReason::LeaseExpired => P::LeaseExpired,
        EndReason::WorkerLost => P::WorkerLost,
        EndReason::WorkerLeft => P::WorkerLeft,
        EndReason::AttemptTimedOut => P::AttemptTimedOut,
        EndReason::AttemptFailed => P::AttemptFailed,
        EndReason::JobCancelled => P::JobCancelled,
        EndReason::DeadlineExceeded => P::DeadlineExceeded,
        EndReason::Suspended => P::Suspended,
        EndReason::DependencyUnsatisfied => P::DependencyUnsatisfied,
    }
}

/// A reply's result for an accepted worker command. `Registered` also tells the worker
/// the cadences it must keep, which only the caller knows.
pub fn accepted_to_reply(a: Accepted, lease_ttl_ms: u64, liveness_ms: u64) -> proto::reply::Result {
    use proto::reply::Result as R;
    match a {
        Accepted::Registered { duplicate, .. } => R::Registered(proto::Registered {
            duplicate,
            lease_ttl_ms,
            liveness_timeout_ms: liveness_ms,
        }),
        Accepted::LeaseStarted {
            fence,
            expires_at,
            duplicate,
        } => R::LeaseStarted(proto::LeaseStarted {
            fence: Some(fence_to_proto(fence)),
            expires_at_ms: expires_at,
            duplicate,
        }),
        Accepted::Renewed { fence, expires_at } => R::Renewed(proto::Renewed {
            fence: Some(fence_to_proto(fence)),
            expires_at_ms: expires_at,
        }),
        Accepted::Completed { fence, duplicate } => R::Completed(proto::Completed {
            fence: Some(fence_to_proto(fence)),
            duplicate,
        }),
        Accepted::Failed {
            fence,
            duplicate,
            retry_at,
        } => R::Failed(proto::Failed {
            fence: Some(fence_to_proto(fence)),
            duplicate,
            retry_at_ms: retry_at,
        }),
        _ => R::Ok(proto::Done {}),
    }
}

/// The session event for an effect addressed to a worker; `None` for job effects.
pub fn worker_event(effect: Effect) -> Option<proto::coordinator_event::Event> {
    use proto::coordinator_event::Event as E;
    use proto::worker_notice::Kind as N;
    let notice = |kind: N, until_ms: u64| {
        E::Notice(proto::WorkerNotice {
            kind: kind as i32,
            until_ms,
        })
    };
    Some(match effect {
        Effect::GrantOffered {
            grant,
            job,
            task,
            attempt,
            payload,
            expires_at,
            ..
        } => E::GrantOffered(proto::GrantOffered {
            grant: grant.0,
            job: job.0,
            task: task.0,
            attempt,
            payload: payload.as_bytes().to_vec(),
            expires_at_ms: expires_at,
        }),
        Effect::GrantWithdrawn {
            grant,
            task,
            reason,
            ..
        } => E::GrantWithdrawn(proto::GrantWithdrawn {
            grant: grant.0,
            task: task.0,
            reason: end_reason(reason) as i32,
        }),
        Effect::LeaseRevoked { fence, reason, .. } => E::LeaseRevoked(proto::LeaseRevoked {
            fence: Some(fence_to_proto(fence)),
            reason: end_reason(reason) as i32,
        }),
        Effect::WorkerLost { .. } => notice(N::Lost, 0),
        Effect::WorkerBlacklisted { until, .. } => notice(N::Blacklisted, until),
        Effect::WorkerReadmitted { .. } => notice(N::Readmitted, 0),
        Effect::WorkerDrained { .. } => notice(N::Drained, 0),
        _ => return None,
    })
}

fn reason_word(r: EndReason) -> String {
    end_reason(r)
        .as_str_name()
        .trim_start_matches("END_REASON_")
        .to_lowercase()
}

pub fn job_outcome_word(o: JobOutcome) -> &'static str {
    match o {
        JobOutcome::Succeeded => "succeeded",
        JobOutcome::Failed => "failed",
        JobOutcome::Cancelled => "cancelled",
        JobOutcome::DeadlineExceeded => "deadline_exceeded",
    }
}

fn task_outcome_detail(o: &TaskOutcome) -> String {
    match o {
        TaskOutcome::Succeeded => "succeeded".into(),
        TaskOutcome::Failed { error } => format!("failed: {error}"),
        TaskOutcome::Skipped => "skipped".into(),
        TaskOutcome::Cancelled { reason } => format!("cancelled: {}", reason_word(*reason)),
    }
}

/// The watch event for an effect addressed to a job; `None` for worker effects.
pub fn job_event(effect: &Effect) -> Option<proto::JobEvent> {
    let ev = |job: u64, task: u64, kind: &str, detail: String, attempt: u32| proto::JobEvent {
        job,
        task,
        kind: kind.to_string(),
        detail,
        attempt,
        progress_per_mille: 0,
    };
    Some(match effect {
        Effect::TaskBlocked {
            job,
            task,
            requires,
        } => ev(job.0, task.0, "task_blocked", requires.join(","), 0),
        Effect::TaskUnblocked { job, task } => {
            ev(job.0, task.0, "task_unblocked", String::new(), 0)
        }
        Effect::TaskRequeued {
            job,
            task,
            attempt,
            reason,
            ..
        } => ev(
            job.0,
            task.0,
            "task_requeued",
            reason_word(*reason),
            *attempt,
        ),
        Effect::TaskSuspended {
            job,
            task,
            waitpoint,
        } => ev(job.0, task.0, "task_suspended", waitpoint.clone(), 0),
        Effect::TaskResumed { job, task } => ev(job.0, task.0, "task_resumed", String::new(), 0),
        Effect::TaskFinished { job, task, outcome } => ev(
            job.0,
            task.0,
            "task_finished",
            task_outcome_detail(outcome),
            0,
        ),
        Effect::JobFinished { job, outcome } => ev(
            job.0,
            0,
            "job_finished",
            job_outcome_word(*outcome).to_string(),
            0,
        ),
        _ => return None,
    })
}

pub fn job_status_to_proto(s: &JobStatus) -> proto::JobStatus {
    proto::JobStatus {
        id: s.id.0,
        name: s.name.clone(),
        tenant: s.tenant.clone(),
        lane: s.lane.clone(),
        submitted_at_ms: s.submitted_at,
        tasks: s.tasks,
        remaining: s.remaining,
        outcome: s
            .outcome
            .map(job_outcome_word)
            .unwrap_or_default()
            .to_string(),
        finished_at_ms: s.finished_at,
    }
}

fn status_detail(s: &TaskStatus) -> String {
    match s {
        TaskStatus::Delayed { until } => format!("until {until}"),
        TaskStatus::Running {
            worker,
            lease_expires_at,
        } => format!("{worker}, lease until {lease_expires_at}"),
        TaskStatus::Suspended { waitpoint } => format!("on {waitpoint}"),
        TaskStatus::Done(o) => match o {
            TaskOutcome::Failed { error } => error.clone(),
            TaskOutcome::Cancelled { reason } => reason_word(*reason),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

pub fn task_view_to_proto(t: &TaskView) -> proto::TaskView {
    proto::TaskView {
        id: t.id.0,
        key: t.key.clone(),
        state: t.status.label().to_string(),
        detail: status_detail(&t.status),
        attempt: t.attempt,
        epoch: t.epoch,
        failures: t.failures,
        losses: t.losses,
        attempts: t
            .attempts
            .iter()
            .map(|a| proto::AttemptView {
                attempt: a.attempt,
                epoch: a.epoch,
                worker: a.worker.0.clone(),
                started_at_ms: a.started_at,
                ended_at_ms: a.ended_at,
                end: a.end.clone().unwrap_or_default(),
            })
            .collect(),
        progress_per_mille: None,
        progress_message: String::new(),
    }
}

pub fn job_view_to_proto(v: &JobView) -> proto::DescribeJobResponse {
    proto::DescribeJobResponse {
        status: Some(job_status_to_proto(&v.status)),
        tasks: v.tasks.iter().map(task_view_to_proto).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> JobSpec {
        let mut spec = JobSpec::new(
            "etl",
            vec![
                TaskSpec::new("a").requires(&["gpu"]),
                TaskSpec::new("b").after(GroupKind::Quorum(1), &["a"]),
            ],
        );
        spec.deadline_ms = Some(60_000);
        spec.tasks[0].payload = Payload::from("hello");
        if let Some(d) = spec.tasks[1].deps.as_mut() {
            d.on_unsatisfied = UnsatisfiedPolicy::Cancel;
        }
        spec
    }

    #[test]
    fn job_spec_round_trips_through_the_wire() {
        let spec = sample();
        assert_eq!(job_spec_from_proto(job_spec_to_proto(&spec)).unwrap(), spec);
    }

    #[test]
    fn an_unset_dependency_kind_is_refused_naming_the_field() {
        let mut wire = job_spec_to_proto(&sample());
        wire.tasks[1].deps.as_mut().unwrap().kind = 0;
        let err = job_spec_from_proto(wire).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(
            err.message().contains("spec.tasks[1].deps.kind"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn jitter_over_100_percent_is_refused() {
        let mut wire = job_spec_to_proto(&sample());
        wire.tasks[0].retry.as_mut().unwrap().jitter_pct = 300;
        let err = job_spec_from_proto(wire).unwrap_err();
        assert!(err.message().contains("spec.tasks[0].retry.jitter_pct"));
    }
}
