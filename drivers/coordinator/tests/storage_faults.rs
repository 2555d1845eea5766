//! A store in trouble never ends the coordinator. A full disk: inputs are refused with
//! `not durable: no space left` while the lease is kept, and served again once there
//! is space. A store out of reach: requests are refused while it is, the lease lapses,
//! and the coordinator takes the partition back (a new epoch) once the store answers,
//! with every acknowledged input.

mod support;

use keel_coordinator::{CoordinatorConfig, CoordinatorError, StoreFault};
use keel_log::{Log, MemoryLog};
use std::sync::Arc;
use std::time::Duration;
use support::*;

/// Polls `apply` of a fresh job until one is accepted, sleeping between tries.
async fn until_accepted(handle: &keel_coordinator::Handle, name: &str) -> Vec<String> {
    let mut refusals = Vec::new();
    within("an input to be accepted again", async {
        for i in 0.. {
            match handle.apply(job(&format!("{name}-{i}"), &["t"])).await {
                Ok(Some(Ok(_))) => return,
                Ok(other) => panic!("the engine answered {other:?}"),
                Err(e) => refusals.push(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    refusals
}

#[tokio::test]
async fn a_full_disk_refuses_inputs_and_keeps_the_lease() {
    let inner = Arc::new(MemoryLog::new());
    let log = FaultyLog::new(inner.clone());
    let clock = manual_clock();
    let handle = start(config("a"), &log, &clock).await;
    let kept = submit(&handle, "kept", &["t"]).await;
    let epoch = handle.epoch();

    log.disk_full(true);
    let first = within("the failed apply", handle.apply(job("full", &["t"]))).await;
    match &first {
        Err(CoordinatorError::NotDurable { fault, .. }) => {
            assert_eq!(*fault, StoreFault::NoSpace)
        }
        other => panic!("expected NotDurable, got {other:?}"),
    }
    let text = first.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("not durable: no space left"), "{text}");

    // For a while every input is refused, without the lease ever being given up.
    let started = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_millis(500) {
        match handle.apply(job("while full", &["t"])).await {
            Err(e @ CoordinatorError::Unavailable { .. })
            | Err(e @ CoordinatorError::NotDurable { .. }) => {
                assert!(e.to_string().contains("no space left"), "{e}");
            }
            other => panic!("expected a refusal for lack of space, got {other:?}"),
        }
        assert!(handle.is_leader(), "a full disk cost the lease");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Reads are still answered, from the state the log holds.
    let found = within("a read", handle.read(move |e| e.describe_job(kept).is_ok())).await;
    assert!(matches!(found, Ok(true)), "{found:?}");
    let failures = handle.metrics().append_failures;
    assert!(
        (1..=5).contains(&failures),
        "{failures} appends tried in half a second on a full disk"
    );

    log.disk_full(false);
    until_accepted(&handle, "after").await;
    assert_eq!(handle.epoch(), epoch, "the term never changed");
    let digest = within("a read", handle.read(|e| e.digest())).await;
    assert_eq!(digest.ok(), Some(log_digest(&*inner).await));
}

#[tokio::test]
async fn a_store_out_of_reach_is_waited_for_and_the_partition_taken_back() {
    let inner = Arc::new(MemoryLog::new());
    let log = FaultyLog::new(inner.clone());
    let clock = manual_clock();
    let short = CoordinatorConfig {
        lease_ttl: Duration::from_millis(300),
        ..config("a")
    };
    let handle = start(short, &log, &clock).await;
    let kept = submit(&handle, "kept", &["t"]).await;
    let epoch = handle.epoch();

    log.outage(true);
    let refused = within("the apply", handle.apply(job("lost", &["t"]))).await;
    assert!(
        matches!(
            refused,
            Err(CoordinatorError::NotDurable {
                fault: StoreFault::Unreachable,
                ..
            })
        ),
        "{refused:?}"
    );
    // The lease lapses while the store is away; requests are refused meanwhile.
    within("the lease to lapse", async {
        while handle.is_leader() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = handle.apply(job("while away", &["t"])).await;
    assert!(waiting.is_err(), "{waiting:?}");

    log.outage(false);
    let refusals = until_accepted(&handle, "back").await;
    assert!(handle.is_leader());
    assert!(
        handle.epoch() > epoch,
        "the partition was taken back under a new epoch"
    );
    assert!(
        refusals
            .iter()
            .all(|r| r.contains("not the leader") || r.contains("not durable")),
        "{refusals:?}"
    );
    let found = within("a read", handle.read(move |e| e.describe_job(kept).is_ok())).await;
    assert!(
        matches!(found, Ok(true)),
        "an acknowledged job was lost: {found:?}"
    );
    assert_eq!(inner.bounds(0).await.map(|b| b.end).ok(), Some(2));
}
