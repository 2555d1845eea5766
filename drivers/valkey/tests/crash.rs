//! valkey-server (appendfsync always) is killed with SIGKILL in the middle of a stream of
//! appends and restarted from its data directory: every acknowledged entry is there, in
//! order, no batch is partial, and the leader's epoch survived.

use keel_log::{scan, Log, LogError};
use keel_valkey::server::ValkeyServer;
use keel_valkey::{ValkeyLog, ValkeyOptions};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const P: u32 = 4;

fn batch(n: u32) -> Vec<Vec<u8>> {
    let size = 1 + n % 13;
    (0..size)
        .map(|i| format!("{n}:{i}:{size}").into_bytes())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_keeps_every_acknowledged_entry() {
    tokio::time::timeout(Duration::from_secs(120), run())
        .await
        .expect("bounded");
}

async fn run() {
    let mut server = ValkeyServer::start();
    let options = ValkeyOptions {
        response_timeout: Duration::from_secs(2),
        ..ValkeyOptions::default()
    };
    let log = Arc::new(
        ValkeyLog::connect(&server.url(), options.clone())
            .await
            .expect("connect"),
    );
    let lease = log
        .acquire(P, "leader", Duration::from_secs(600))
        .await
        .expect("acquire");
    let acked: Arc<Mutex<Vec<(u32, u64)>>> = Arc::default();
    let appender = {
        let (log, acked, epoch) = (log.clone(), acked.clone(), lease.epoch);
        tokio::spawn(async move {
            let mut end = 0;
            for n in 0.. {
                match log.append(P, epoch, end, &batch(n)).await {
                    Ok(new_end) => {
                        end = new_end;
                        acked.lock().expect("journal").push((n, end));
                    }
                    Err(e) => return e,
                }
            }
            unreachable!("the server is killed long before")
        })
    };
    while acked.lock().expect("journal").len() < 300 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill();
    let stopped_by = appender.await.expect("appender task");
    assert!(
        matches!(stopped_by, LogError::Unavailable { partition: P, .. }),
        "a server killed mid-stream is unavailable: {stopped_by}"
    );
    let acked = acked.lock().expect("journal").clone();
    let &(last, acked_end) = acked.last().expect("acknowledged batches");

    server.restart();
    let log = ValkeyLog::connect(&server.url(), options)
        .await
        .expect("reconnect after restart");
    let mut entries = Vec::new();
    let end = scan(&log, P, 0, |record| -> Result<(), LogError> {
        entries.push(String::from_utf8(record.payload).expect("utf-8"));
        Ok(())
    })
    .await
    .expect("the log reads back cleanly");
    assert!(
        end >= acked_end,
        "acknowledged entries up to {acked_end} survive; the log ends at {end}"
    );
    let mut expected: Vec<String> = Vec::new();
    let mut n = 0;
    while expected.len() < entries.len() {
        expected.extend(
            batch(n)
                .into_iter()
                .map(|b| String::from_utf8(b).expect("utf-8")),
        );
        n += 1;
    }
    assert_eq!(entries, expected[..entries.len()], "entries in order");
    assert_eq!(expected.len(), entries.len(), "no partial batch");
    assert!(n > last, "every acknowledged batch up to {last} is present");

    assert!(
        matches!(
            log.acquire(P, "other", Duration::from_secs(1)).await,
            Err(LogError::LeaseHeld { .. })
        ),
        "the lease survived"
    );
    let again = log
        .acquire(P, "leader", Duration::from_secs(60))
        .await
        .expect("the leader re-acquires");
    assert!(
        again.epoch > lease.epoch,
        "the epoch survived the crash and still only increases"
    );
    let refused = log.append(P, lease.epoch, end, &batch(0)).await;
    assert!(
        matches!(refused, Err(LogError::Fenced { .. })),
        "{refused:?}"
    );
}
