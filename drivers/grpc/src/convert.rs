//! Conversions between the engine's replies, effects and views and `keel.v1` messages.

use crate::proto;
use keel_engine::{
    Accepted, Effect, EndReason, Fence, JobOutcome, JobStatus, JobView, SuspendTimeout, TaskId,
    TaskOutcome, TaskStatus, TaskView,
};

pub(crate) fn fence_to_proto(f: Fence) -> proto::Fence {
    proto::Fence {
        task: f.task.get(),
        attempt: f.attempt,
        epoch: f.epoch,
    }
}

pub(crate) fn fence_from_proto(f: &proto::Fence) -> Fence {
    Fence {
        task: TaskId::new(f.task),
        attempt: f.attempt,
        epoch: f.epoch,
    }
}

/// `None` for a value this version does not know; unspecified means the engine's
/// default, failing.
pub(crate) fn suspend_timeout_from_proto(value: i32) -> Option<SuspendTimeout> {
    use proto::SuspendTimeout as P;
    match P::try_from(value).ok()? {
        P::Unspecified | P::Fail => Some(SuspendTimeout::Fail),
        P::Resume => Some(SuspendTimeout::Resume),
    }
}

pub(crate) fn suspend_timeout_to_proto(t: SuspendTimeout) -> proto::SuspendTimeout {
    match t {
        SuspendTimeout::Fail => proto::SuspendTimeout::Fail,
        SuspendTimeout::Resume => proto::SuspendTimeout::Resume,
    }
}

pub(crate) fn end_reason(r: EndReason) -> proto::EndReason {
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
        EndReason::BudgetExhausted => P::BudgetExhausted,
    }
}

/// A reply's result for an accepted worker command. `Registered` also tells the worker
/// the cadences it must keep, which only the caller knows.
pub(crate) fn accepted_to_reply(
    a: Accepted,
    lease_ttl_ms: u64,
    liveness_ms: u64,
) -> proto::reply::Result {
    use proto::reply::Result as R;
    match a {
        Accepted::Registered { duplicate, .. } => R::Registered(proto::Registered {
            duplicate,
            lease_ttl_ms,
            liveness_timeout_ms: liveness_ms,
            // The session adds its server's limit.
            max_message_bytes: 0,
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
        Accepted::Suspended { fence, duplicate } => R::Suspended(proto::Suspended {
            fence: Some(fence_to_proto(fence)),
            duplicate,
        }),
        Accepted::UsageRecorded {
            owner,
            budget,
            dimension,
            used,
            duplicate,
        } => R::UsageRecorded(proto::UsageRecorded {
            owner: Some(owner_to_proto(&owner)),
            budget,
            dimension,
            used,
            duplicate,
        }),
        other => stream_reply(other),
    }
}

/// The reply to an accepted emit or acknowledgement; `Done` for anything else.
fn stream_reply(a: Accepted) -> proto::reply::Result {
    use proto::reply::Result as R;
    match a {
        Accepted::Emitted {
            fence,
            next,
            dropped,
            duplicate,
        } => R::Emitted(emitted(fence, next, dropped, duplicate)),
        Accepted::Acked {
            fence,
            acked,
            duplicate,
        } => R::Acked(proto::Acked {
            fence: Some(fence_to_proto(fence)),
            acked,
            duplicate,
        }),
        _ => R::Ok(proto::Done {}),
    }
}

fn emitted(fence: Fence, next: u64, dropped: u64, duplicate: bool) -> proto::Emitted {
    proto::Emitted {
        fence: Some(fence_to_proto(fence)),
        next,
        dropped,
        duplicate,
    }
}

/// The session event for an effect addressed to a worker; `None` for job effects.
pub(crate) fn worker_event(effect: Effect) -> Option<proto::coordinator_event::Event> {
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
            key,
            attempt,
            payload,
            inputs,
            signal,
            streams,
            expires_at,
            ..
        } => E::GrantOffered(proto::GrantOffered {
            grant: grant.get(),
            job: job.get(),
            task: task.get(),
            key,
            attempt,
            payload: payload.as_bytes().to_vec(),
            expires_at_ms: expires_at,
            inputs: inputs
                .into_iter()
                .map(|i| proto::TaskInput {
                    key: i.key,
                    output: i.output.map(|o| o.as_bytes().to_vec()),
                })
                .collect(),
            signal_payload: signal.map(|p| p.as_bytes().to_vec()),
            stream_from: streams,
        }),
        Effect::GrantWithdrawn {
            grant,
            task,
            reason,
            ..
        } => E::GrantWithdrawn(proto::GrantWithdrawn {
            grant: grant.get(),
            task: task.get(),
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

/// The detail of a finished task's watch event: the outcome's label, then its error or
/// reason after a colon.
fn task_outcome_detail(o: &TaskOutcome) -> String {
    match o {
        TaskOutcome::Succeeded | TaskOutcome::Skipped => o.label().into(),
        TaskOutcome::Failed { error } => format!("{}: {error}", o.label()),
        TaskOutcome::Cancelled { reason } => format!("{}: {}", o.label(), reason.label()),
    }
}

/// The watch event for an effect addressed to a job; `None` for worker effects. Its
/// kind is the effect's label.
pub(crate) fn job_event(effect: &Effect) -> Option<proto::JobEvent> {
    let (job, task, detail, attempt) = match effect {
        Effect::TaskBlocked {
            job,
            task,
            requires,
        } => (job, task.get(), requires.join(","), 0),
        Effect::TaskUnblocked { job, task } | Effect::TaskResumed { job, task } => {
            (job, task.get(), String::new(), 0)
        }
        Effect::TaskRequeued {
            job,
            task,
            attempt,
            reason,
            ..
        } => (job, task.get(), reason.label().to_string(), *attempt),
        Effect::TaskSuspended {
            job,
            task,
            waitpoint,
        } => (job, task.get(), waitpoint.clone(), 0),
        Effect::TaskFinished { job, task, outcome } => {
            (job, task.get(), task_outcome_detail(outcome), 0)
        }
        Effect::JobFinished { job, outcome } => (job, 0, outcome.label().to_string(), 0),
        _ => return None,
    };
    Some(proto::JobEvent {
        job: job.get(),
        task,
        kind: effect.label().to_string(),
        detail,
        attempt,
        ..Default::default()
    })
}

pub(crate) fn job_status_to_proto(status: &JobStatus) -> proto::JobStatus {
    proto::JobStatus {
        id: status.id.get(),
        name: status.name.clone(),
        tenant: status.tenant.clone(),
        lane: status.lane.clone(),
        submitted_at_ms: status.submitted_at,
        tasks: status.tasks,
        remaining: status.remaining,
        outcome: status
            .outcome
            .map(JobOutcome::label)
            .unwrap_or_default()
            .to_string(),
        finished_at_ms: status.finished_at,
        task_states: Vec::new(),
        budget_notes: status.budget_notes.clone(),
    }
}

fn status_detail(status: &TaskStatus) -> String {
    match status {
        TaskStatus::Delayed { until } => format!("until {until}"),
        TaskStatus::Running {
            worker,
            lease_expires_at,
        } => format!("{worker}, lease until {lease_expires_at}"),
        TaskStatus::Suspended { waitpoint } => format!("on {waitpoint}"),
        TaskStatus::RateLimited { scope, name, .. } => format!("{} {name:?}", scope.as_str()),
        TaskStatus::BudgetStopped {
            owner,
            budget,
            dimension,
        } => format!("budget {budget:?} of {owner}: {dimension} hard limit"),
        TaskStatus::Done(o) => match o {
            TaskOutcome::Failed { error } => error.clone(),
            TaskOutcome::Cancelled { reason } => reason.label().to_string(),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

pub(crate) fn task_view_to_proto(t: &TaskView) -> proto::TaskView {
    proto::TaskView {
        id: t.id.get(),
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
                worker: a.worker.as_str().to_owned(),
                started_at_ms: a.started_at,
                ended_at_ms: a.ended_at,
                end: a.end.clone().unwrap_or_default(),
            })
            .collect(),
        progress_per_mille: None,
        progress_message: String::new(),
        capabilities: t.capabilities.clone(),
        worker: match &t.status {
            TaskStatus::Running { worker, .. } => worker.as_str().to_owned(),
            _ => String::new(),
        },
        until_ms: match &t.status {
            TaskStatus::Delayed { until } | TaskStatus::RateLimited { until, .. } => Some(*until),
            TaskStatus::Running {
                lease_expires_at, ..
            } => Some(*lease_expires_at),
            _ => None,
        },
        waitpoint: match &t.status {
            TaskStatus::Suspended { waitpoint } => waitpoint.clone(),
            _ => String::new(),
        },
        budget_stop: match &t.status {
            TaskStatus::BudgetStopped {
                owner,
                budget,
                dimension,
            } => Some(proto::BudgetStop {
                owner: Some(owner_to_proto(owner)),
                budget: budget.clone(),
                dimension: dimension.clone(),
            }),
            _ => None,
        },
    }
}

pub(crate) fn job_view_to_proto(v: &JobView) -> proto::DescribeJobResponse {
    proto::DescribeJobResponse {
        status: Some(job_status_to_proto(&v.status)),
        tasks: v.tasks.iter().map(task_view_to_proto).collect(),
    }
}

/// A budget's owner on the wire.
pub(crate) fn owner_to_proto(owner: &keel_engine::BudgetOwner) -> proto::BudgetOwner {
    use proto::budget_owner::Owner;
    proto::BudgetOwner {
        owner: Some(match owner {
            keel_engine::BudgetOwner::Job(j) => Owner::Job(j.get()),
            keel_engine::BudgetOwner::Tenant(t) => Owner::Tenant(t.clone()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::JobId;

    fn detail(effect: Effect) -> String {
        job_event(&effect).expect("a job effect").detail
    }

    #[test]
    fn job_event_kinds_on_the_wire_are_stable() {
        let (job, task) = (JobId::new(1), TaskId::new(2));
        let requires = vec!["gpu".to_string(), "ssd".to_string()];
        let reason = EndReason::LeaseExpired;
        let waitpoint = "approval".to_string();
        let outcome = JobOutcome::Succeeded;
        let events: Vec<(String, String, u32)> = [
            Effect::TaskBlocked {
                job,
                task,
                requires,
            },
            Effect::TaskUnblocked { job, task },
            Effect::TaskRequeued {
                job,
                task,
                attempt: 3,
                reason,
                ready_at: 9,
            },
            Effect::TaskSuspended {
                job,
                task,
                waitpoint,
            },
            Effect::TaskResumed { job, task },
            Effect::JobFinished { job, outcome },
        ]
        .iter()
        .map(|e| job_event(e).expect("a job effect"))
        .map(|e| (e.kind, e.detail, e.attempt))
        .collect();
        let expected = [
            ("task_blocked", "gpu,ssd", 0),
            ("task_unblocked", "", 0),
            ("task_requeued", "lease_expired", 3),
            ("task_suspended", "approval", 0),
            ("task_resumed", "", 0),
            ("job_finished", "succeeded", 0),
        ];
        let expected: Vec<(String, String, u32)> = expected
            .iter()
            .map(|(k, d, a)| (k.to_string(), d.to_string(), *a))
            .collect();
        assert_eq!(events, expected);
        let lost = Effect::WorkerLost {
            worker: keel_engine::WorkerId::new("w"),
            instance: keel_engine::InstanceId::new(1),
        };
        assert!(job_event(&lost).is_none());
    }

    /// Watch-event and status words are wire strings: pinned here so a change to the
    /// engine's labels cannot change them unnoticed.
    #[test]
    fn outcome_and_reason_words_on_the_wire_are_stable() {
        let (job, task) = (JobId::new(1), TaskId::new(2));
        let finished = |outcome| detail(Effect::TaskFinished { job, task, outcome });
        assert_eq!(finished(TaskOutcome::Succeeded), "succeeded");
        assert_eq!(finished(TaskOutcome::Skipped), "skipped");
        let error = "boom".to_string();
        assert_eq!(finished(TaskOutcome::Failed { error }), "failed: boom");
        let reason = EndReason::DependencyUnsatisfied;
        let cancelled = finished(TaskOutcome::Cancelled { reason });
        assert_eq!(cancelled, "cancelled: dependency_unsatisfied");
        let words: Vec<String> = JobOutcome::ALL
            .iter()
            .map(|&outcome| detail(Effect::JobFinished { job, outcome }))
            .collect();
        assert_eq!(
            words,
            ["succeeded", "failed", "cancelled", "deadline_exceeded"]
        );
        let reasons: Vec<String> = EndReason::ALL
            .iter()
            .map(|&reason| {
                detail(Effect::TaskRequeued {
                    job,
                    task,
                    attempt: 2,
                    reason,
                    ready_at: 0,
                })
            })
            .collect();
        let labels: Vec<&str> = EndReason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(reasons, labels);
    }
}
