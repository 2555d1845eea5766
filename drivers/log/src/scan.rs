//! Reading a partition's log front to back, checking what a single read cannot: that
//! no entry is missing between reads, that epochs never go backwards, and that every
//! batch is whole.
//!
//! Batches: each entry frame records where its append ended. The entries of one append
//! share that end; the entry at a batch's end starts the next batch. A log that ends
//! before the end its last batch recorded lost the tail of an append, and stores never
//! acknowledge part of an append (redb commits it in one transaction, Valkey in one
//! function call), so such a tail was acknowledged and is reported as a
//! [`Corruption::TornBatch`], never dropped. An append whose store-level commit did not
//! complete leaves no entry at all and is invisible here: the store's own recovery
//! drops it, and the caller never saw it acknowledged.

use crate::error::{Corruption, LogError, RecordRef};
use crate::{Epoch, Log, Offset, Partition, Record};

/// Records fetched per read while scanning.
pub const SCAN_CHUNK: usize = 8_192;

/// Feeds every record from `from` to the log's end, in order, to `visit`. Returns the
/// end offset. Stops at the first damaged, missing or out-of-order record, and at a
/// batch whose tail is missing.
pub async fn scan<L: Log, E: From<LogError>>(
    log: &L,
    partition: Partition,
    from: Offset,
    mut visit: impl FnMut(Record) -> Result<(), E>,
) -> Result<Offset, E> {
    let location = log.location();
    let fail = |at: Offset, corruption| {
        LogError::corrupt(partition, RecordRef::Entry(at), corruption).located(&location)
    };
    let end = log.bounds(partition).await?.end;
    let mut next = from;
    let mut batches = Batches::starting_at(from);
    let mut last_epoch: Epoch = 0;
    while next < end {
        let want = SCAN_CHUNK.min((end - next) as usize);
        let records = log
            .read(partition, next, want)
            .await
            .map_err(|e| e.located(&location))?;
        if records.is_empty() {
            return Err(fail(next, Corruption::Missing { end: next }).into());
        }
        for record in records {
            if record.offset != next {
                let found = record.offset;
                return Err(fail(next, Corruption::Misplaced { found }).into());
            }
            if record.epoch < last_epoch {
                let regressed = Corruption::EpochRegressed {
                    epoch: record.epoch,
                    previous: last_epoch,
                };
                return Err(fail(next, regressed).into());
            }
            batches.check(&record).map_err(|c| fail(next, c))?;
            last_epoch = record.epoch;
            next += 1;
            visit(record)?;
        }
    }
    if batches.end > end {
        let torn = Corruption::TornBatch {
            batch_end: batches.end,
            end,
        };
        return Err(fail(end, torn).into());
    }
    Ok(end)
}

/// Where the batch being read ends.
struct Batches {
    end: Offset,
}

impl Batches {
    fn starting_at(from: Offset) -> Batches {
        Batches { end: from }
    }

    fn check(&mut self, record: &Record) -> Result<(), Corruption> {
        let found = record.batch_end.unwrap_or(record.offset + 1);
        if record.offset == self.end {
            if found <= record.offset {
                return Err(Corruption::BadBatchEnd { batch_end: found });
            }
            self.end = found;
            Ok(())
        } else if found == self.end {
            Ok(())
        } else {
            Err(Corruption::BatchMismatch {
                found,
                expected: self.end,
            })
        }
    }
}
