//! The function library is reloaded when a server lost it (restart, failover, flush) or
//! holds another version, without the caller noticing; and two coordinators on separate
//! connections are fenced from each other.

use keel_log::{Log, LogError};
use keel_valkey::server::ValkeyServer;
use keel_valkey::{ValkeyCluster, ValkeyLog, ValkeyOptions, LIBRARY_SOURCE, LIBRARY_VERSION};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

fn flush_functions(server: &ValkeyServer) {
    redis::cmd("FUNCTION")
        .arg("FLUSH")
        .query::<()>(&mut server.admin())
        .expect("FUNCTION FLUSH");
}

#[tokio::test]
async fn missing_library_is_reloaded() {
    let server = ValkeyServer::start();
    let log = ValkeyLog::connect(&server.url(), ValkeyOptions::default())
        .await
        .unwrap();
    let lease = log.acquire(1, "a", LONG).await.unwrap();
    log.append(1, lease.epoch, 0, &[b"one".to_vec()])
        .await
        .unwrap();
    flush_functions(&server);
    assert_eq!(
        log.append(1, lease.epoch, 1, &[b"two".to_vec()])
            .await
            .unwrap(),
        2
    );
    assert_eq!(log.read(1, 0, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn other_library_version_is_replaced() {
    let server = ValkeyServer::start();
    let log = ValkeyLog::connect(&server.url(), ValkeyOptions::default())
        .await
        .unwrap();
    let lease = log.acquire(1, "a", LONG).await.unwrap();
    let current = format!("local VERSION = '{LIBRARY_VERSION}'");
    let older = LIBRARY_SOURCE.replace(&current, "local VERSION = 'older'");
    assert_ne!(older, LIBRARY_SOURCE);
    let mut admin = server.admin();
    redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(&older)
        .query::<String>(&mut admin)
        .unwrap();
    assert_eq!(
        log.append(1, lease.epoch, 0, &[b"one".to_vec()])
            .await
            .unwrap(),
        1
    );
    let keys = keel_valkey::PartitionKeys::new("keel", 1);
    let mut bounds = redis::cmd("FCALL");
    bounds
        .arg("keel_bounds")
        .arg(keys.all().len())
        .arg(&keys.all()[..])
        .arg(LIBRARY_VERSION);
    let answer: Vec<u64> = bounds
        .query(&mut admin)
        .expect("the server runs the current library again");
    assert_eq!(answer, vec![0, 0, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_nodes_that_lost_the_library_are_reloaded() {
    let cluster = ValkeyCluster::start();
    let log = ValkeyLog::connect_cluster(&cluster.urls(), ValkeyOptions::default())
        .await
        .unwrap();
    for node in &cluster.nodes {
        flush_functions(node);
    }
    for p in 0..12 {
        let lease = log.acquire(p, "a", LONG).await.unwrap();
        log.append(p, lease.epoch, 0, &[format!("p{p}").into_bytes()])
            .await
            .unwrap();
        assert_eq!(
            log.read(p, 0, 1).await.unwrap()[0].payload,
            format!("p{p}").into_bytes()
        );
    }
    let mut admin = cluster.nodes[0].admin();
    let owners: std::collections::BTreeSet<u16> = (0..12)
        .map(|p| {
            let slot: u16 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(keel_valkey::PartitionKeys::new("keel", p).log)
                .query(&mut admin)
                .expect("CLUSTER KEYSLOT");
            slot / 5_461
        })
        .collect();
    assert_eq!(
        owners.len(),
        3,
        "the twelve partitions span all three primaries"
    );
}

#[tokio::test]
async fn coordinators_on_separate_connections_are_fenced() {
    let server = ValkeyServer::start();
    let a = ValkeyLog::connect(&server.url(), ValkeyOptions::default())
        .await
        .unwrap();
    let b = ValkeyLog::connect(&server.url(), ValkeyOptions::default())
        .await
        .unwrap();
    let ttl = Duration::from_millis(1_000);
    let lease_a = a.acquire(2, "a", ttl).await.unwrap();
    a.append(2, lease_a.epoch, 0, &[b"a".to_vec()])
        .await
        .unwrap();
    assert!(
        matches!(b.acquire(2, "b", ttl).await, Err(LogError::LeaseHeld { ref holder, .. }) if holder == "a")
    );
    tokio::time::sleep(ttl * 2).await;
    let lease_b = b.acquire(2, "b", LONG).await.unwrap();
    match a.append(2, lease_a.epoch, 1, &[b"late".to_vec()]).await {
        Err(LogError::Fenced {
            partition: 2,
            epoch,
            current,
        }) => assert_eq!((epoch, current), (lease_a.epoch, lease_b.epoch)),
        other => panic!("the deposed coordinator must be fenced: {other:?}"),
    }
    b.append(2, lease_b.epoch, 1, &[b"b".to_vec()])
        .await
        .unwrap();
    let epochs: Vec<u64> = a
        .read(2, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.epoch)
        .collect();
    assert_eq!(epochs, vec![lease_a.epoch, lease_b.epoch]);
}
