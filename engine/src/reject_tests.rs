//! Tests of `reject`.

use super::*;

#[test]
fn codes_list_every_rejection_once_in_order() {
    let (w, t, i) = (WorkerId::new("w"), TaskId(1), InstanceId(1));
    let text = || String::from("x");
    let every = [
        Rejection::InvalidJob(JobError::Empty),
        Rejection::JobNameConflict {
            name: text(),
            existing: JobId(1),
        },
        Rejection::TenantJobLimit {
            tenant: text(),
            limit: 1,
        },
        Rejection::UnknownJob { job: JobId(1) },
        Rejection::UnknownTask { task: t },
        Rejection::InvalidWorker {
            worker: w.clone(),
            why: text(),
        },
        Rejection::CapabilityToken {
            token: text(),
            why: CapabilityIssue::Empty,
        },
        Rejection::TooManyWorkers { limit: 1 },
        Rejection::UnknownWorker { worker: w.clone() },
        Rejection::StaleInstance {
            worker: w.clone(),
            presented: i,
            current: i,
        },
        Rejection::WorkerLost {
            worker: w.clone(),
            instance: i,
        },
        Rejection::RegistrationConflict {
            worker: w.clone(),
            instance: i,
        },
        Rejection::UnknownGrant { grant: GrantId(1) },
        Rejection::GrantNotYours {
            grant: GrantId(1),
            owner: w.clone(),
            worker: w.clone(),
        },
        Rejection::StaleFence {
            task: t,
            attempt_seen: 1,
            epoch_seen: 1,
            attempt_current: 1,
            epoch_current: 1,
        },
        Rejection::NotLeaseHolder { task: t, worker: w },
        Rejection::NotWaiting {
            task: t,
            waitpoint: text(),
        },
        Rejection::TooManySignals { task: t, limit: 1 },
        Rejection::InvalidName {
            field: text(),
            why: text(),
        },
        Rejection::TooLarge {
            field: text(),
            size: 2,
            limit: 1,
        },
        Rejection::LimitReached {
            limit: text(),
            value: 1,
        },
        Rejection::OutputOverLimit {
            task: t,
            limit: text(),
            bytes: 2,
            max: 1,
        },
        Rejection::StreamOverLimit {
            task: t,
            limit: text(),
            bytes: 2,
            max: 1,
        },
        Rejection::StreamGap {
            task: t,
            expected: 1,
            got: 2,
        },
        Rejection::StreamFull {
            task: t,
            consumer: t,
            capacity: 1,
        },
        Rejection::UnknownEdge {
            task: t,
            from: text(),
        },
        Rejection::AckPastEnd {
            task: t,
            from: text(),
            cursor: 2,
            end: 1,
        },
        Rejection::InvalidConfig {
            field: text(),
            problem: text(),
        },
        Rejection::InvalidSchedule { problem: text() },
        Rejection::UnknownSchedule { name: text() },
        Rejection::ScheduleNameConflict { name: text() },
        Rejection::UnknownBudget { budget: text() },
        Rejection::InvalidUsage { problem: text() },
    ];
    let codes: Vec<&str> = every.iter().map(Rejection::code).collect();
    assert_eq!(codes, Rejection::CODES);
}
