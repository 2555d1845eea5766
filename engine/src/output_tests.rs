//! Tests of `output`.

use super::*;
use crate::ids::{Fence, GrantId, InstanceId, JobId, TaskId, WorkerId};

/// One effect of every kind, in declaration order.
fn one_of_each() -> Vec<Effect> {
    let (worker, job, task) = (WorkerId::new("w"), JobId(1), TaskId(2));
    let fence = Fence {
        task,
        attempt: 1,
        epoch: 1,
    };
    let reason = EndReason::WorkerLost;
    vec![
        Effect::GrantOffered {
            worker: worker.clone(),
            grant: GrantId(3),
            job,
            task,
            key: "a".into(),
            attempt: 1,
            payload: Payload::from("p"),
            inputs: vec![],
            signal: None,
            streams: vec![],
            expires_at: 5,
        },
        Effect::GrantWithdrawn {
            worker: worker.clone(),
            grant: GrantId(3),
            task,
            reason,
        },
        Effect::LeaseRevoked {
            worker: worker.clone(),
            fence,
            reason,
        },
        Effect::TaskBlocked {
            job,
            task,
            requires: vec![],
        },
        Effect::TaskUnblocked { job, task },
        Effect::TaskRequeued {
            job,
            task,
            attempt: 2,
            reason,
            ready_at: 9,
        },
        Effect::TaskSuspended {
            job,
            task,
            waitpoint: "w".into(),
        },
        Effect::TaskResumed { job, task },
        Effect::TaskFinished {
            job,
            task,
            outcome: TaskOutcome::Skipped,
        },
        Effect::JobFinished {
            job,
            outcome: JobOutcome::Succeeded,
        },
        Effect::WorkerLost {
            worker: worker.clone(),
            instance: InstanceId(1),
        },
        Effect::WorkerBlacklisted {
            worker: worker.clone(),
            until: 7,
        },
        Effect::WorkerReadmitted {
            worker: worker.clone(),
        },
        Effect::WorkerDrained { worker },
        Effect::ScheduleFired {
            schedule: "nightly".into(),
            due: 60_000,
            job,
            first_task: task,
        },
        Effect::BudgetLimitReached {
            owner: crate::budget_spec::BudgetOwner::Tenant("acme".into()),
            budget: "daily".into(),
            dimension: "tokens".into(),
            kind: crate::budget_spec::LimitKind::Soft,
            used: 10,
            limit: 8,
        },
    ]
}

#[test]
fn labels_list_every_effect_once_in_order() {
    let labels: Vec<&str> = one_of_each().iter().map(Effect::label).collect();
    assert_eq!(labels, Effect::LABELS);
}

#[test]
fn reason_and_outcome_lists_have_distinct_labels() {
    let reasons: std::collections::BTreeSet<&str> =
        EndReason::ALL.iter().map(|r| r.label()).collect();
    assert_eq!(reasons.len(), EndReason::ALL.len());
    let outcomes: std::collections::BTreeSet<&str> =
        JobOutcome::ALL.iter().map(|o| o.label()).collect();
    assert_eq!(outcomes.len(), JobOutcome::ALL.len());
}

#[test]
fn task_outcome_labels_match_the_job_outcome_words() {
    let failed = TaskOutcome::Failed { error: "e".into() };
    let cancelled = TaskOutcome::Cancelled {
        reason: EndReason::JobCancelled,
    };
    assert_eq!(
        TaskOutcome::Succeeded.label(),
        JobOutcome::Succeeded.label()
    );
    assert_eq!(failed.label(), JobOutcome::Failed.label());
    assert_eq!(cancelled.label(), JobOutcome::Cancelled.label());
    assert_eq!(TaskOutcome::Skipped.label(), "skipped");
}
