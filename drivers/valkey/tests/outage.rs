//! Valkey goes away and comes back. While the server is down every call fails as
//! unavailable (never as fenced or corrupt), and once it is back on the same port the
//! same `ValkeyLog` works again: the leader reads the log's end, renews its lease under
//! its old epoch and appends where the log ends, and nothing acknowledged is lost. A
//! server that turns into a read-only replica or hits its memory limit refuses writes
//! as unavailable and as out of space, without applying them.

use keel_log::{scan, ErrorKind, Log, LogError, Outcome};
use keel_valkey::server::ValkeyServer;
use keel_valkey::{ValkeyLog, ValkeyOptions};
use std::time::{Duration, Instant};

const P: u32 = 6;

fn options() -> ValkeyOptions {
    ValkeyOptions {
        response_timeout: Duration::from_millis(500),
        connection_timeout: Duration::from_millis(300),
        ..ValkeyOptions::default()
    }
}

fn batch(n: u64) -> Vec<Vec<u8>> {
    (0..3).map(|i| format!("{n}:{i}").into_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_fail_as_unavailable_while_the_server_is_down_and_resume_after() {
    tokio::time::timeout(Duration::from_secs(120), outage())
        .await
        .expect("bounded");
}

async fn outage() {
    let mut server = ValkeyServer::start();
    let log = ValkeyLog::connect(&server.url(), options()).await.unwrap();
    let ttl = Duration::from_secs(2);
    let lease = log.acquire(P, "leader", ttl).await.unwrap();
    let mut acked: Vec<Vec<u8>> = Vec::new();
    let mut end = 0;
    for n in 0..20 {
        end = log.append(P, lease.epoch, end, &batch(n)).await.unwrap();
        acked.extend(batch(n));
    }

    server.kill();
    let down_since = Instant::now();
    let mut refused = 0;
    // Longer than the lease: the lease lapses while the store is down.
    while down_since.elapsed() < Duration::from_millis(2_500) {
        let appended = log.append(P, lease.epoch, end, &batch(100)).await;
        let e = appended.expect_err("no append succeeds while the server is down");
        assert_unavailable(&e);
        let renewed = log.renew(&lease, ttl).await;
        assert_unavailable(&renewed.expect_err("no renewal while the server is down"));
        assert_unavailable(&log.bounds(P).await.expect_err("no read either"));
        refused += 1;
    }
    assert!(refused > 0);

    server.restart();
    // The connection comes back by itself; the caller only retries.
    let deadline = Instant::now() + Duration::from_secs(30);
    let bounds = loop {
        match log.bounds(P).await {
            Ok(bounds) => break bounds,
            Err(e) if Instant::now() < deadline => assert_unavailable(&e),
            Err(e) => panic!("the log did not come back: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        bounds.end, end,
        "an append refused during the outage was not applied"
    );
    // Nobody took over: the old epoch is still current, so the lapsed lease renews.
    let renewed = log.renew(&lease, ttl).await.expect("the leader renews");
    assert_eq!(renewed.epoch, lease.epoch);
    let end = log.append(P, lease.epoch, end, &batch(200)).await.unwrap();
    acked.extend(batch(200));
    let mut stored = Vec::new();
    let read_end = scan(&log, P, 0, |r| -> Result<(), LogError> {
        stored.push(r.payload);
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!((read_end, stored), (end, acked));
}

fn assert_unavailable(e: &LogError) {
    assert!(
        matches!(e, LogError::Unavailable { partition: P, .. }),
        "expected unavailable, got {e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.is_unavailable() && e.retryable() && !e.is_deposed() && !e.is_corrupt());
    assert!(e.to_string().contains("is unavailable"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_replica_refuses_writes_as_unavailable() {
    let primary = ValkeyServer::start();
    let server = ValkeyServer::start();
    let log = ValkeyLog::connect(&server.url(), options()).await.unwrap();
    let lease = log
        .acquire(P, "leader", Duration::from_secs(60))
        .await
        .unwrap();
    let end = log.append(P, lease.epoch, 0, &batch(0)).await.unwrap();
    let mut admin = server.admin();
    redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port())
        .query::<()>(&mut admin)
        .unwrap();
    let refused = log
        .append(P, lease.epoch, end, &batch(1))
        .await
        .unwrap_err();
    assert_unavailable(&refused);
    assert_eq!(refused.outcome(), Outcome::NotWritten);
    assert!(
        refused.to_string().contains("read only replica"),
        "{refused}"
    );
    assert!(refused.is_transient_and_not_written());
    redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query::<()>(&mut admin)
        .unwrap();
    // Promoted again, the server holds what it copied from its primary: a new leader
    // starts there.
    let lease = log
        .acquire(P + 1, "leader", Duration::from_secs(60))
        .await
        .unwrap();
    log.append(P + 1, lease.epoch, 0, &batch(2)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_at_its_memory_limit_refuses_writes_as_out_of_space() {
    let server = ValkeyServer::start();
    let log = ValkeyLog::connect(&server.url(), options()).await.unwrap();
    let lease = log
        .acquire(P, "leader", Duration::from_secs(60))
        .await
        .unwrap();
    let end = log.append(P, lease.epoch, 0, &batch(0)).await.unwrap();
    let mut admin = server.admin();
    let set = |admin: &mut redis::Connection, name: &str, value: &str| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query::<()>(admin)
            .unwrap();
    };
    set(&mut admin, "maxmemory-policy", "noeviction");
    set(&mut admin, "maxmemory", "1");
    let refused = log
        .append(P, lease.epoch, end, &batch(1))
        .await
        .unwrap_err();
    match &refused {
        LogError::NoSpace {
            partition: P,
            store,
            outcome: Outcome::NotWritten,
        } => assert_eq!(*store, format!("valkey at {}", server.url())),
        other => panic!("expected no space, got {other:?}"),
    }
    assert!(
        refused.to_string().starts_with(&format!(
            "partition {P}: not durable: no space left on valkey at"
        )),
        "{refused}"
    );
    let renewed = log.renew(&lease, Duration::from_secs(60)).await;
    assert!(renewed.unwrap_err().is_no_space());
    assert_eq!(log.bounds(P).await.unwrap().end, end, "reads still work");
    set(&mut admin, "maxmemory", "0");
    assert_eq!(
        log.append(P, lease.epoch, end, &batch(1)).await.unwrap(),
        end + 3
    );
}

#[tokio::test]
async fn connecting_to_a_server_that_is_down_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let url = format!("redis://127.0.0.1:{port}");
    let err = ValkeyLog::connect(&url, options())
        .await
        .err()
        .expect("nothing listens there");
    assert!(err.is_unavailable(), "{err}");
    let bad = ValkeyLog::connect("not a url", options())
        .await
        .err()
        .expect("not a url");
    assert!(!bad.is_unavailable(), "{bad}");
}
