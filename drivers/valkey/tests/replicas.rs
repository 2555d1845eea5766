//! With `wait_replicas`, a write is acknowledged only once a replica has it; without a
//! replica answering, the caller gets a typed timeout instead of a false promise.

use keel_log::{Log, LogError};
use keel_valkey::server::ValkeyServer;
use keel_valkey::{ValkeyLog, ValkeyOptions, WaitReplicas};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_wait_for_a_replica() {
    let primary = ValkeyServer::start();
    let mut replica = ValkeyServer::start();
    let mut admin = replica.admin();
    redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port())
        .query::<()>(&mut admin)
        .expect("REPLICAOF");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut admin)
            .expect("INFO");
        if info.contains("master_link_status:up") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica did not sync: {info}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let wait = WaitReplicas {
        replicas: 1,
        timeout: Duration::from_millis(500),
    };
    let options = ValkeyOptions {
        wait_replicas: Some(wait),
        ..ValkeyOptions::default()
    };
    let log = ValkeyLog::connect(&primary.url(), options)
        .await
        .expect("connect");
    let lease = log.acquire(0, "a", Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        log.append(0, lease.epoch, 0, &[b"replicated".to_vec()])
            .await
            .unwrap(),
        1
    );
    let copied: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg("keel:{p0}:log")
        .arg(0)
        .arg(-1)
        .query(&mut admin)
        .unwrap();
    assert_eq!(
        copied.len(),
        1,
        "the replica has the entry once the append returns"
    );

    replica.kill();
    match log
        .append(0, lease.epoch, 1, &[b"unreplicated".to_vec()])
        .await
    {
        Err(LogError::ReplicaTimeout {
            partition: 0,
            wanted: 1,
            acked: 0,
        }) => {}
        other => panic!("no replica to acknowledge: {other:?}"),
    }
}
