//! What the partitions table holds for one partition: its leadership record and the
//! offset of its first live entry.

use crate::error::{Corruption, LogError, RecordRef};
use crate::leadership::LeadershipState;
use crate::{Offset, Partition};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    pub lease: LeadershipState,
    pub first: Offset,
}

/// `epoch u64 | expires_ms u64 | first u64 | held u8 | holder utf-8`.
pub(crate) fn encode_meta(meta: &Meta) -> Vec<u8> {
    let holder = meta.lease.holder.as_deref().unwrap_or("");
    let mut out = Vec::with_capacity(25 + holder.len());
    out.extend_from_slice(&meta.lease.epoch.to_le_bytes());
    out.extend_from_slice(&meta.lease.expires_ms.to_le_bytes());
    out.extend_from_slice(&meta.first.to_le_bytes());
    out.push(u8::from(meta.lease.holder.is_some()));
    out.extend_from_slice(holder.as_bytes());
    out
}

pub(crate) fn decode_meta(partition: Partition, bytes: &[u8]) -> Result<Meta, LogError> {
    let fail = |corruption| LogError::corrupt(partition, RecordRef::Meta, corruption);
    if bytes.len() < 25 {
        return Err(fail(Corruption::Truncated { len: bytes.len() }));
    }
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
    let holder =
        std::str::from_utf8(&bytes[25..]).map_err(|e| fail(Corruption::Payload(e.to_string())))?;
    Ok(Meta {
        lease: LeadershipState {
            epoch: word(0),
            expires_ms: word(8),
            holder: (bytes[24] == 1).then(|| holder.to_owned()),
        },
        first: word(16),
    })
}
