//! Offline repairs of a partition's log, for when its engine panics on an input
//! (`keel admin`). Each takes the partition's lease like a coordinator (so it is
//! refused while one leads), works through the log's own contract, and hands the lease
//! back when done:
//!
//! - [`check_log`] replays the log and reports the first entry that panics the engine.
//! - [`skip_inputs`] replays the log without the given entries and stores a snapshot
//!   of the result at the log's end. The snapshot replaces everything before it, the
//!   skipped entries included, so every later recovery starts after them: the log
//!   holds no record a replay must know to ignore.
//! - [`cancel_job`] appends a cancellation of a job, applied at the engine's own clock
//!   so no timer fires before it, for a job whose state (not one input) panics the
//!   engine, such as a timer that fires into it.

use crate::config::CoordinatorConfig;
use crate::error::CoordinatorError;
use crate::poison::{apply_contained, Met, Poisoned};
use crate::recovery::recover_with;
use keel_engine::{ClientCommand, Input, JobId};
use keel_log::{scan, snapshot_of, Entry, Leadership, Log, Offset};
use std::collections::BTreeSet;
use std::time::Duration;

/// How long an offline repair may hold the lease if it dies before handing it back.
const ADMIN_LEASE: Duration = Duration::from_secs(30);

/// What an offline repair found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminReport {
    /// The offset of the snapshot recovery started from, if any.
    pub snapshot: Option<Offset>,
    /// The log's end after the repair.
    pub end: Offset,
    /// Entries replayed.
    pub replayed: u64,
    /// Each skipped entry's offset and what it was.
    pub skipped: Vec<(Offset, String)>,
    /// The engine's answer to an appended input.
    pub answer: Option<String>,
}

/// Replays `config.partition`'s log without changing it; fails with
/// [`CoordinatorError::PoisonedLog`] naming the first entry that panics the engine.
/// Each repair uses the config's partition, holder (which must differ from a running
/// coordinator's), engine configuration (used only if the log has no snapshot, so it
/// must match the serving one) and `prepare_engine`.
pub async fn check_log<L: Log>(
    log: &L,
    config: &CoordinatorConfig,
) -> Result<AdminReport, CoordinatorError> {
    let skip = BTreeSet::new();
    let recovered = replay(log, config, &skip).await?;
    Ok(AdminReport {
        snapshot: recovered.snapshot,
        end: recovered.next,
        replayed: recovered.replayed,
        skipped: Vec::new(),
        answer: None,
    })
}

/// The log replayed as the repair's config says, skipping `skip`.
async fn replay<L: Log>(
    log: &L,
    config: &CoordinatorConfig,
    skip: &BTreeSet<Offset>,
) -> Result<keel_log::Recovered, CoordinatorError> {
    let engine = config.engine.clone();
    recover_with(log, config.partition, engine, skip, config.prepare_engine).await
}

/// Drops the entries at `offsets` for good: replays the rest and stores a snapshot of
/// the result at the log's end. Every offset must be a live entry after the snapshot.
pub async fn skip_inputs<L: Log>(
    log: &L,
    config: &CoordinatorConfig,
    offsets: &BTreeSet<Offset>,
) -> Result<AdminReport, CoordinatorError> {
    let lease = log
        .acquire(config.partition, &config.holder, ADMIN_LEASE)
        .await?;
    let result = skip_under(log, &lease, config, offsets).await;
    log.step_down(&lease).await?;
    result
}

async fn skip_under<L: Log>(
    log: &L,
    lease: &Leadership,
    config: &CoordinatorConfig,
    offsets: &BTreeSet<Offset>,
) -> Result<AdminReport, CoordinatorError> {
    let partition = lease.partition;
    let from = match log.load_snapshot(partition).await? {
        Some(snapshot) => snapshot.offset,
        None => log.bounds(partition).await?.first,
    };
    let end = log.bounds(partition).await?.end;
    if let Some(&outside) = offsets.iter().find(|o| **o < from || **o >= end) {
        return Err(CoordinatorError::NotInLog {
            partition,
            offset: outside,
            first: from,
            end,
        });
    }
    let mut skipped = Vec::new();
    scan(
        log,
        partition,
        from,
        |record| -> Result<(), CoordinatorError> {
            if offsets.contains(&record.offset) {
                let entry = Entry::decode(partition, record.offset, &record.payload)?;
                let what =
                    Poisoned::new(record.offset, &entry.input, String::new(), Met::Replaying);
                skipped.push((record.offset, what.input));
            }
            Ok(())
        },
    )
    .await?;
    let recovered = replay(log, config, offsets).await?;
    let snapshot = snapshot_of(&recovered.engine, recovered.next);
    log.store_snapshot(partition, lease.epoch, &snapshot)
        .await?;
    Ok(AdminReport {
        snapshot: recovered.snapshot,
        end: recovered.next,
        replayed: recovered.replayed,
        skipped,
        answer: None,
    })
}

/// Appends a cancellation of `job`, applied at the engine's own clock. Refused while
/// the log holds an entry that panics the engine (skip it first), and if the engine
/// refuses the cancellation (an unknown job) or panics on it; nothing is appended then.
pub async fn cancel_job<L: Log>(
    log: &L,
    config: &CoordinatorConfig,
    job: JobId,
) -> Result<AdminReport, CoordinatorError> {
    let lease = log
        .acquire(config.partition, &config.holder, ADMIN_LEASE)
        .await?;
    let result = cancel_under(log, &lease, config, job).await;
    log.step_down(&lease).await?;
    result
}

async fn cancel_under<L: Log>(
    log: &L,
    lease: &Leadership,
    config: &CoordinatorConfig,
    job: JobId,
) -> Result<AdminReport, CoordinatorError> {
    let partition = lease.partition;
    let mut recovered = replay(log, config, &BTreeSet::new()).await?;
    let engine = &mut recovered.engine;
    let now = engine.now();
    let cancel = Entry::new(now, Input::Client(ClientCommand::CancelJob { job }));
    let outputs = match apply_contained(engine, now, cancel.input.clone()) {
        Ok(outputs) => outputs,
        Err(message) => {
            let met = Met::Serving { recorded: false };
            let poisoned = Poisoned::new(recovered.next, &cancel.input, message, met);
            return Err(CoordinatorError::EnginePanicked {
                partition,
                poisoned,
            });
        }
    };
    let answer = match outputs.reply {
        Some(Ok(accepted)) => format!("{accepted:?}"),
        Some(Err(rejection)) => {
            return Err(CoordinatorError::Refused {
                partition,
                rejection,
            })
        }
        None => "no answer".to_owned(),
    };
    let end = log
        .append(partition, lease.epoch, recovered.next, &[cancel.encode()])
        .await?;
    Ok(AdminReport {
        snapshot: recovered.snapshot,
        end,
        replayed: recovered.replayed,
        skipped: Vec::new(),
        answer: Some(answer),
    })
}
