//! The coordinator on a real valkey-server: state survives a coordinator restart and
//! a server restart, and a standby on its own connection takes over a lapsed lease.

mod support;

use keel_coordinator::{Coordinator, CoordinatorConfig, CoordinatorError, Deposed};
use keel_valkey::server::ValkeyServer;
use keel_valkey::{ValkeyLog, ValkeyOptions};
use std::sync::Arc;
use std::time::Duration;
use support::*;

async fn connect(server: &ValkeyServer) -> Arc<ValkeyLog> {
    let log = within(
        "connect",
        ValkeyLog::connect(&server.url(), ValkeyOptions::default()),
    )
    .await;
    Arc::new(log.unwrap_or_else(|e| panic!("connect: {e}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_coordinator_and_a_server_restart() {
    let mut server = ValkeyServer::start();
    let clock = manual_clock();
    let log = connect(&server).await;
    let first = start(config("a"), &log, &clock).await;
    let mut worker = Worker::register(&first, "w1").await;
    let job = submit(&first, "on valkey", &["a", "b"]).await;
    let fence = worker.claim(&first).await;
    worker.complete(&first, fence).await;
    let before = first
        .read(|e| e.digest())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    within("shutdown", first.shutdown())
        .await
        .unwrap_or_else(|e| panic!("shutdown: {e}"));
    drop(log);

    server.restart();
    let log = connect(&server).await;
    let second = start(config("b"), &log, &clock).await;
    let after = second
        .read(|e| e.digest())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after, before);
    let remaining = second
        .read(move |e| e.describe_job(job).map(|v| v.status.remaining))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(remaining, Ok(1));
    submit(&second, "after the restart", &["c"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_on_valkey_takes_over_a_lapsed_lease() {
    let server = ValkeyServer::start();
    let clock = manual_clock();
    let short = |holder| CoordinatorConfig {
        lease_ttl: Duration::from_millis(500),
        ..config(holder)
    };
    let a_log = FaultyLog::new(connect(&server).await);
    let b_log = FaultyLog::new(connect(&server).await);
    let leader = start(short("a"), &a_log, &clock).await;
    let acknowledged = submit(&leader, "acknowledged", &["t"]).await;
    let digest = leader
        .read(|e| e.digest())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let standby = tokio::spawn(Coordinator::start(short("b"), b_log.clone(), clock.clone()));
    // The leader is cut off from Valkey: its lease lapses and it cannot take it back.
    a_log.outage(true);
    let lost = within("the leader to lose its lease", leader.deposed()).await;
    assert_eq!(deposed_why(&lost), Some(Deposed::LeaseLapsed), "{lost}");
    let successor = within("the standby to take over", standby)
        .await
        .unwrap_or_else(|e| panic!("standby task: {e}"))
        .unwrap_or_else(|e| panic!("standby start: {e}"));
    let recovered = successor
        .read(|e| e.digest())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(recovered, digest);
    let found = successor
        .read(move |e| e.describe_job(acknowledged).is_ok())
        .await;
    assert!(matches!(found, Ok(true)));
    let refused = leader.apply(job("to the old leader", &["t"])).await;
    assert!(
        matches!(refused, Err(CoordinatorError::NotLeader { .. })),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valkey_outage_is_waited_out_and_the_partition_taken_back() {
    let mut server = ValkeyServer::start();
    let clock = manual_clock();
    let config = CoordinatorConfig {
        lease_ttl: Duration::from_millis(1_000),
        ..config("a")
    };
    let log = connect(&server).await;
    let handle = start(config, &log, &clock).await;
    let acknowledged = submit(&handle, "before the outage", &["t"]).await;
    let epoch = handle.epoch();

    server.kill();
    let refused = within("an apply", handle.apply(job("during", &["t"]))).await;
    assert!(refused.is_err(), "{refused:?}");
    // Longer than the lease: the coordinator must not stop, only refuse.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(!handle.is_leader());
    let waiting = within("an apply", handle.apply(job("still down", &["t"]))).await;
    assert!(waiting.is_err(), "{waiting:?}");

    server.restart();
    within("the partition to be taken back", async {
        loop {
            if let Ok(Some(Ok(_))) = handle.apply(job("after", &["t"])).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(handle.is_leader());
    assert!(handle.epoch() > epoch);
    let found = handle
        .read(move |e| e.describe_job(acknowledged).is_ok())
        .await;
    assert!(matches!(found, Ok(true)), "{found:?}");
}
