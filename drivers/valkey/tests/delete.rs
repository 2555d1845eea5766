//! Deleting a throwaway partition removes all of its keys and none of another's.

use keel_log::{Bounds, Log, Snapshot};
use keel_valkey::server::ValkeyServer;
use keel_valkey::{ValkeyLog, ValkeyOptions};
use std::time::Duration;

#[tokio::test]
async fn deleting_a_partition_leaves_nothing_of_it_and_spares_the_others() {
    let server = ValkeyServer::start();
    let log = ValkeyLog::connect(&server.url(), ValkeyOptions::default())
        .await
        .unwrap();
    for p in [4, 5] {
        let lease = log.acquire(p, "a", Duration::from_secs(60)).await.unwrap();
        let batch = vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()];
        log.append(p, lease.epoch, 0, &batch).await.unwrap();
        let snapshot = Snapshot {
            offset: 1,
            digest: vec![],
            state: b"s".to_vec(),
        };
        log.store_snapshot(p, lease.epoch, &snapshot).await.unwrap();
    }
    log.delete_partition(4).await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*{p4}*")
        .query(&mut server.admin())
        .unwrap();
    assert!(keys.is_empty(), "left behind: {keys:?}");
    assert_eq!(log.bounds(4).await.unwrap(), Bounds { first: 0, end: 0 });
    assert_eq!(log.load_snapshot(4).await.unwrap(), None);
    assert_eq!(log.bounds(5).await.unwrap(), Bounds { first: 1, end: 3 });
    assert_eq!(log.read(5, 1, 10).await.unwrap().len(), 2);
    log.acquire(4, "b", Duration::from_secs(60))
        .await
        .expect("the lease went with the partition");
}
