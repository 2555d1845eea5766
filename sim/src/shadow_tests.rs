//! The shadow's routing rules, each on its own: an offer that breaks one is flagged by
//! that rule's check, and one at the edge of a cap is not.

use super::*;
use keel_engine::{Fence, TaskSpec, WorkerId};

fn w(name: &str) -> WorkerId {
    WorkerId::new(name)
}

/// Job `j` (tenant `t`, at most `cap` running) of tasks a, b, c, the last needing `gpu`.
fn shadow(cap: Option<u32>, tenant_cap: Option<u32>) -> Shadow {
    let mut spec = JobSpec::new(
        "j",
        vec![
            TaskSpec::new("a"),
            TaskSpec::new("b"),
            TaskSpec::new("c").requires(&["gpu"]),
        ],
    );
    spec.tenant = "t".into();
    spec.max_concurrency = cap;
    let caps = tenant_cap
        .map(|c| ("t".to_string(), c))
        .into_iter()
        .collect();
    let mut s = Shadow::new(caps);
    s.add_job(JobId::new(1), TaskId::new(1), &spec);
    s
}

fn offer(s: &mut Shadow, worker: &str, grant: u64, task: u64) -> Vec<Check> {
    s.offer(
        &w(worker),
        GrantId::new(grant),
        JobId::new(1),
        TaskId::new(task),
        1,
    )
    .into_iter()
    .map(|(check, _)| check)
    .collect()
}

#[test]
fn an_offer_within_every_rule_is_held_and_flags_nothing() {
    let mut s = shadow(Some(2), Some(2));
    s.register(&w("w"), &["gpu".into()], 2);
    assert_eq!(offer(&mut s, "w", 1, 1), []);
    assert_eq!(
        offer(&mut s, "w", 2, 3),
        [],
        "capable of gpu, second of two"
    );
    assert_eq!(s.grant_task(GrantId::new(2)), Some((TaskId::new(3), 1)));
    assert_eq!(
        offer(&mut s, "w", 3, 1),
        [
            Check::DoubleGrant,
            Check::WorkerCap,
            Check::JobCap,
            Check::TenantCap
        ]
    );
}

#[test]
fn an_unregistered_worker_is_flagged() {
    let mut s = shadow(None, None);
    assert_eq!(offer(&mut s, "nobody", 1, 1), [Check::UnknownWorker]);
    assert_eq!(offer(&mut s, "w", 2, 9), [Check::UnknownTask]);
}

#[test]
fn a_blacklisted_worker_is_flagged_until_readmitted() {
    let mut s = shadow(None, None);
    s.register(&w("w"), &[], 4);
    s.blacklist(&w("w"), true);
    assert_eq!(offer(&mut s, "w", 1, 1), [Check::BlacklistedGrant]);
    s.blacklist(&w("w"), false);
    assert_eq!(offer(&mut s, "w", 2, 1), []);
}

#[test]
fn a_task_offered_to_a_worker_without_its_capability_is_flagged() {
    let mut s = shadow(None, None);
    s.register(&w("w"), &["cpu".into()], 4);
    assert_eq!(offer(&mut s, "w", 1, 3), [Check::Capability]);
}

#[test]
fn each_cap_admits_its_own_value_and_flags_one_more() {
    let mut worker = shadow(None, None);
    worker.register(&w("w"), &[], 1);
    assert_eq!(offer(&mut worker, "w", 1, 1), []);
    assert_eq!(offer(&mut worker, "w", 2, 2), [Check::WorkerCap]);

    let mut job = shadow(Some(1), None);
    job.register(&w("w"), &[], 4);
    assert_eq!(offer(&mut job, "w", 1, 1), []);
    assert_eq!(offer(&mut job, "w", 2, 2), [Check::JobCap]);

    let mut tenant = shadow(None, Some(1));
    tenant.register(&w("w"), &[], 4);
    assert_eq!(offer(&mut tenant, "w", 1, 1), []);
    assert_eq!(offer(&mut tenant, "w", 2, 2), [Check::TenantCap]);
}

#[test]
fn a_withdrawn_grant_frees_its_place() {
    let mut s = shadow(Some(1), Some(1));
    s.register(&w("w"), &[], 1);
    assert_eq!(offer(&mut s, "w", 1, 1), []);
    s.release_grant(GrantId::new(1));
    assert_eq!(
        offer(&mut s, "w", 2, 2),
        [],
        "worker, job and tenant counts went down"
    );
}

#[test]
fn commits_and_ends_count_once() {
    let mut s = shadow(None, None);
    assert!(s.commit(TaskId::new(1)));
    assert!(!s.commit(TaskId::new(1)), "a second commit");
    assert!(s.commit(TaskId::new(9)), "an unknown task is not judged");
    assert!(s.finish(TaskId::new(1)));
    assert!(!s.finish(TaskId::new(1)), "a second end");
    assert!(s.finish(TaskId::new(9)));
    assert!(
        s.job_progress("j").starts_with("1/3"),
        "{}",
        s.job_progress("j")
    );
}

#[test]
fn a_lost_worker_releases_only_what_it_still_holds() {
    let mut s = shadow(None, None);
    for name in ["w1", "w2"] {
        s.register(&w(name), &[], 4);
    }
    assert_eq!(offer(&mut s, "w1", 1, 1), []);
    assert_eq!(offer(&mut s, "w1", 2, 2), []);
    let fence = Fence {
        task: TaskId::new(2),
        attempt: 1,
        epoch: 1,
    };
    assert_eq!(s.lease(5, &w("w1"), GrantId::new(2), fence), Ok(()));
    // Task 1's grant is withdrawn and the task offered to w2.
    s.release_grant(GrantId::new(1));
    assert_eq!(offer(&mut s, "w2", 3, 1), []);
    let ended: Vec<Fence> = s.clear_worker(&w("w1")).iter().map(|e| e.fence).collect();
    assert_eq!(ended, [fence]);
    assert_eq!(s.describe_hold(TaskId::new(1)), "t1 offered to w2 by g3");
    assert_eq!(s.describe_hold(TaskId::new(2)), "t2 held by nobody");
}
