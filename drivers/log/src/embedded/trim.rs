//! Removing the entries a snapshot covers, a bounded number per write transaction.
//! redb has one writer at a time, and a lease renewal is a write too: trimming 100,000
//! entries in one transaction held the writer for seconds (7 s in a release build), and
//! the renewal waited behind it until the lease lapsed.

use super::failure::Failure;
use crate::{Offset, Partition};
use redb::ReadableTable;

/// Entries trimmed per write transaction (about 38 ms of redb's writer).
pub(super) const TRIM_CHUNK: u64 = 1024;

/// Removes up to [`TRIM_CHUNK`] of the entries before `first`, oldest first; returns
/// whether any are left.
pub(super) fn trim_chunk(
    entries: &mut redb::Table<(u32, u64), &[u8]>,
    partition: Partition,
    first: Offset,
) -> Result<bool, Failure> {
    let oldest = entries
        .range((partition, 0)..(partition, first))?
        .next()
        .transpose()?
        .map(|(key, _)| key.value().1);
    let Some(from) = oldest else {
        return Ok(false);
    };
    let to = from.saturating_add(TRIM_CHUNK).min(first);
    entries.retain_in((partition, from)..(partition, to), |_, _| false)?;
    Ok(to < first)
}
