//! Reading a partition's log front to back, checking what a single read cannot: that
//! no entry is missing between reads and that epochs never go backwards.

use crate::error::{Corruption, LogError, RecordRef};
use crate::{Epoch, Log, Offset, Partition, Record};

/// Records fetched per read while scanning.
pub const SCAN_CHUNK: usize = 8_192;

/// Feeds every record from `from` to the log's end, in order, to `visit`. Returns the
/// end offset. Stops at the first damaged, missing or out-of-order record.
pub async fn scan<L: Log, E: From<LogError>>(
    log: &L,
    partition: Partition,
    from: Offset,
    mut visit: impl FnMut(Record) -> Result<(), E>,
) -> Result<Offset, E> {
    let end = log.bounds(partition).await?.end;
    let mut next = from;
    let mut last_epoch: Epoch = 0;
    while next < end {
        let want = SCAN_CHUNK.min((end - next) as usize);
        let records = log.read(partition, next, want).await?;
        if records.is_empty() {
            let missing = Corruption::Missing { end: next };
            return Err(LogError::corrupt(partition, RecordRef::Entry(next), missing).into());
        }
        for record in records {
            if record.offset != next {
                let misplaced = Corruption::Misplaced {
                    found: record.offset,
                };
                return Err(LogError::corrupt(partition, RecordRef::Entry(next), misplaced).into());
            }
            if record.epoch < last_epoch {
                let regressed = Corruption::EpochRegressed {
                    epoch: record.epoch,
                    previous: last_epoch,
                };
                return Err(LogError::corrupt(partition, RecordRef::Entry(next), regressed).into());
            }
            last_epoch = record.epoch;
            next += 1;
            visit(record)?;
        }
    }
    Ok(end)
}
