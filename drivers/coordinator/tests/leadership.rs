//! Leadership on a shared log: a standby takes the partition over when the leader's
//! lease lapses, with every acknowledged input; a fenced or lapsed leader refuses to
//! serve; a clean shutdown hands the partition over at once.

mod support;

use keel_coordinator::{Coordinator, CoordinatorConfig, CoordinatorError, Deposed};
use keel_log::{Log, MemoryLog};
use std::sync::Arc;
use std::time::Duration;
use support::*;

fn short_lease(holder: &str) -> CoordinatorConfig {
    CoordinatorConfig {
        lease_ttl: Duration::from_millis(300),
        ..config(holder)
    }
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leaders_lease_lapses() {
    let shared = Arc::new(MemoryLog::new());
    let (a_log, b_log) = (
        FaultyLog::new(shared.clone()),
        FaultyLog::new(shared.clone()),
    );
    let clock = manual_clock();
    let leader = start(short_lease("a"), &a_log, &clock).await;
    Worker::register(&leader, "w1").await;
    let mut acknowledged = Vec::new();
    for i in 0..3 {
        acknowledged.push(submit(&leader, &format!("job{i}"), &["t"]).await);
    }
    let digest = leader
        .read(|e| e.digest())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let standby = tokio::spawn(Coordinator::start(
        short_lease("b"),
        b_log.clone(),
        clock.clone(),
    ));
    // The leader loses its store: its lease lapses and it cannot take it back.
    a_log.outage(true);
    let lost = within("the leader to lose its lease", leader.deposed()).await;
    assert_eq!(deposed_why(&lost), Some(Deposed::LeaseLapsed), "{lost}");
    assert!(!leader.is_leader());

    let successor = within("the standby to take over", standby)
        .await
        .unwrap_or_else(|e| panic!("standby task: {e}"))
        .unwrap_or_else(|e| panic!("standby start: {e}"));
    assert!(successor.is_leader());
    assert!(successor.epoch() > leader.epoch());
    let recovered = successor
        .read(|e| e.digest())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(recovered, digest);
    let jobs = successor
        .read(|e| e.jobs().iter().map(|j| j.id).collect::<Vec<_>>())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(jobs, acknowledged);

    // Its store back, the old leader stands by behind the successor's live lease.
    a_log.outage(false);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = leader.apply(job("to the old leader", &["t"])).await;
    assert!(
        matches!(refused, Err(CoordinatorError::NotLeader { .. })),
        "{refused:?}"
    );
    assert!(!leader.is_leader());
    submit(&successor, "to the new leader", &["t"]).await;
    assert_eq!(shared.bounds(0).await.map(|b| b.end).ok(), Some(5));
    assert!(
        successor.is_leader(),
        "the old leader took the partition back"
    );
}

#[tokio::test]
async fn a_fenced_leader_refuses_and_records_nothing() {
    let shared = Arc::new(MemoryLog::new());
    let clock = manual_clock();
    let leader = start(config("a"), &shared, &clock).await;
    submit(&leader, "kept", &["t"]).await;

    // The same holder acquiring again (a restarted process) fences the old epoch.
    let lease = shared
        .acquire(0, "a", Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let refused = within("the fenced apply", leader.apply(job("lost", &["t"]))).await;
    match refused {
        Err(CoordinatorError::NotLeader {
            why: Deposed::Fenced { current },
            ..
        }) => assert_eq!(current, lease.epoch),
        other => panic!("expected NotLeader fenced, got {other:?}"),
    }
    assert!(!leader.is_leader());
    assert_eq!(shared.bounds(0).await.map(|b| b.end).ok(), Some(1));
    // It stands by: the holder that fenced it may be a process under the same name,
    // whose live lease it must wait for rather than fence in turn.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = leader.apply(job("still lost", &["t"])).await;
    assert!(
        matches!(again, Err(CoordinatorError::NotLeader { .. })),
        "{again:?}"
    );
    let renewed = shared.renew(&lease, Duration::from_secs(30)).await;
    assert!(
        renewed.is_ok(),
        "the fencing holder was fenced in turn: {renewed:?}"
    );
}

#[tokio::test]
async fn shutdown_steps_down_so_a_standby_need_not_wait_for_the_lease() {
    let shared = Arc::new(MemoryLog::new());
    let clock = manual_clock();
    // A lease longer than `within` waits: only a step-down lets the standby in.
    let long = |holder| CoordinatorConfig {
        lease_ttl: Duration::from_secs(120),
        ..config(holder)
    };
    let leader = start(long("a"), &shared, &clock).await;
    let handed = submit(&leader, "handed over", &["t"]).await;
    let standby = tokio::spawn(Coordinator::start(long("b"), shared.clone(), clock.clone()));
    let old = leader.clone();
    within("shutdown", leader.shutdown())
        .await
        .unwrap_or_else(|e| panic!("shutdown: {e}"));
    assert!(matches!(
        old.apply(job("after shutdown", &["t"])).await,
        Err(CoordinatorError::Stopped)
    ));

    let successor = within("the standby to take over", standby)
        .await
        .unwrap_or_else(|e| panic!("standby task: {e}"))
        .unwrap_or_else(|e| panic!("standby start: {e}"));
    let found = successor
        .read(move |e| e.describe_job(handed).is_ok())
        .await;
    assert!(matches!(found, Ok(true)));
}
