//! Two coordinators fight over one partition, each pausing past its lease now and
//! then like a stalled process. Whatever the interleaving, the log must hold exactly the
//! acknowledged batches, in nondecreasing epoch order, and a deposed coordinator must be
//! told so with a typed error.

use crate::{scan, Epoch, Leadership, Log, LogError, Offset, Partition};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_millis(150);
const PAUSE: Duration = Duration::from_millis(400);
const ROUNDS: usize = 3;
const BATCHES_PER_ROUND: usize = 5;

#[derive(Debug)]
struct Acked {
    epoch: Epoch,
    start: Offset,
    payloads: Vec<Vec<u8>>,
}

#[derive(Default)]
struct Journal {
    acked: Mutex<Vec<Acked>>,
}

/// Two coordinators pausing past their leases: the log holds exactly the acknowledged
/// batches in nondecreasing epochs, and the deposed one gets a typed error.
pub async fn two_coordinators_contend<L: Log>(log: &L, p: Partition) {
    let journal = Journal::default();
    let (fenced_a, fenced_b) = tokio::join!(
        coordinator(log, p, "a", &journal),
        coordinator(log, p, "b", &journal)
    );
    assert!(
        fenced_a > 0 && fenced_b > 0,
        "each coordinator was deposed while paused: a {fenced_a}, b {fenced_b}"
    );

    let mut stored = Vec::new();
    let end = scan(log, p, 0, |record| -> Result<(), LogError> {
        stored.push(record);
        Ok(())
    })
    .await
    .expect("the contended log reads back cleanly, epochs in order");
    let mut acked = journal
        .acked
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    acked.sort_by_key(|a| a.start);
    let total: usize = acked.iter().map(|a| a.payloads.len()).sum();
    assert_eq!(
        end as usize, total,
        "the log holds exactly the acknowledged batches"
    );
    let mut last_epoch = 0;
    for batch in &acked {
        assert!(
            batch.epoch >= last_epoch,
            "an older epoch appended after a newer one: {batch:?}"
        );
        last_epoch = batch.epoch;
        for (payload, offset) in batch.payloads.iter().zip(batch.start..) {
            let record = &stored[offset as usize];
            assert_eq!(
                (record.epoch, &record.payload),
                (batch.epoch, payload),
                "entry {offset}"
            );
        }
    }
}

/// Leads in rounds, each ending with a pause past the lease and one more append under
/// the old epoch. Returns how often that append (or another) was fenced.
async fn coordinator<L: Log>(log: &L, p: Partition, name: &str, journal: &Journal) -> usize {
    let mut fenced = 0;
    for round in 0..ROUNDS {
        let lease = acquire(log, p, name).await;
        let mut end = log.bounds(p).await.expect("bounds").end;
        for batch in 0..BATCHES_PER_ROUND {
            match append(log, &lease, end, format!("{name}:{round}:{batch}"), journal).await {
                Ok(new_end) => end = new_end,
                Err(()) => fenced += 1,
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(PAUSE).await;
        if append(log, &lease, end, format!("{name}:{round}:late"), journal)
            .await
            .is_err()
        {
            fenced += 1;
        }
    }
    fenced
}

async fn acquire<L: Log>(log: &L, p: Partition, name: &str) -> Leadership {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match log.acquire(p, name, TTL).await {
            Ok(lease) => return lease,
            Err(LogError::LeaseHeld { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{name} could not acquire: {e}"),
        }
    }
}

/// Appends one two-entry batch; `Err` means fenced, anything else unexpected panics.
async fn append<L: Log>(
    log: &L,
    lease: &Leadership,
    start: Offset,
    tag: String,
    journal: &Journal,
) -> Result<Offset, ()> {
    let payloads = vec![
        format!("{tag}/0").into_bytes(),
        format!("{tag}/1").into_bytes(),
    ];
    match log
        .append(lease.partition, lease.epoch, start, &payloads)
        .await
    {
        Ok(end) => {
            let acked = Acked {
                epoch: lease.epoch,
                start,
                payloads,
            };
            journal
                .acked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(acked);
            Ok(end)
        }
        Err(LogError::Fenced { epoch, current, .. }) => {
            assert!(
                epoch == lease.epoch && current > epoch,
                "fenced by a newer epoch"
            );
            Err(())
        }
        Err(e) => panic!("{tag}: a leader's append failed otherwise than fenced: {e}"),
    }
}
