//! The stored form of entries and snapshots. Every record starts with a format version
//! and ends with a CRC-32 of everything before it, so a torn or flipped record is found
//! when it is read instead of being fed to the engine.
//!
//! Entry frame, version 2 (written by this build): `2 | epoch u64 | offset u64 |
//! batch_end u64 | payload | crc32 u32` (little endian). The offset inside the frame
//! catches records stored in the wrong place; `batch_end` is the end offset of the append
//! the entry was part of, so a reader finds a batch whose tail is gone
//! ([`crate::scan`]). Version 1 (`1 | epoch | offset | payload | crc32`) is still read;
//! it carries no batch, and each such entry counts as a batch of its own.
//!
//! Snapshot frame, version 1: `1 | offset u64 | digest_len u32 | digest | state | crc32 u32`.

use crate::error::{Corruption, LogError, RecordRef};
use crate::{Epoch, Offset, Partition, Record, Snapshot};

/// Format version of entry frames written by this build.
pub const ENTRY_FRAME_VERSION: u8 = 2;
/// Format version of snapshot frames written by this build.
pub const SNAPSHOT_FRAME_VERSION: u8 = 1;

const ENTRY_HEADER_V1: usize = 1 + 8 + 8;
pub(crate) const ENTRY_HEADER: usize = ENTRY_HEADER_V1 + 8;
const SNAPSHOT_HEADER: usize = 1 + 8 + 4;
pub(crate) const CRC: usize = 4;

/// Frames one entry's payload for storage at `offset`, in an append that ends at
/// `batch_end`.
pub fn encode_entry(epoch: Epoch, offset: Offset, batch_end: Offset, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entry_frame_len(payload.len()));
    write_entry(&mut out, epoch, offset, batch_end, payload);
    out
}

/// Bytes of the frame [`write_entry`] writes for a payload of `payload_len` bytes, so a
/// caller can size one buffer for a whole batch.
pub fn entry_frame_len(payload_len: usize) -> usize {
    ENTRY_HEADER + payload_len + CRC
}

/// Appends the frame of one entry to `out`, leaving what `out` held before untouched:
/// a store that sends a batch as one request writes its frames straight into it
/// instead of framing each entry in a buffer of its own and copying it again.
pub fn write_entry(
    out: &mut Vec<u8>,
    epoch: Epoch,
    offset: Offset,
    batch_end: Offset,
    payload: &[u8],
) {
    let start = out.len();
    out.reserve(entry_frame_len(payload.len()));
    out.extend_from_slice(&entry_header(epoch, offset, batch_end));
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The header of an entry frame: version, epoch, offset, batch end.
pub(crate) fn entry_header(epoch: Epoch, offset: Offset, batch_end: Offset) -> [u8; ENTRY_HEADER] {
    let mut header = [0; ENTRY_HEADER];
    header[0] = ENTRY_FRAME_VERSION;
    header[1..9].copy_from_slice(&epoch.to_le_bytes());
    header[9..17].copy_from_slice(&offset.to_le_bytes());
    header[17..25].copy_from_slice(&batch_end.to_le_bytes());
    header
}

/// The offset an entry frame says it is stored at, read without checking the frame.
pub(crate) fn frame_offset(frame: &[u8]) -> Option<Offset> {
    frame.get(9..17).map(|bytes| u64_at(bytes, 0))
}

/// Frames a record as it was stored: version 1 when it carries no batch, else version 2.
pub fn encode_record(record: &Record) -> Vec<u8> {
    match record.batch_end {
        Some(batch_end) => encode_entry(record.epoch, record.offset, batch_end, &record.payload),
        None => {
            let mut out = Vec::with_capacity(ENTRY_HEADER_V1 + record.payload.len() + CRC);
            out.push(1);
            out.extend_from_slice(&record.epoch.to_le_bytes());
            out.extend_from_slice(&record.offset.to_le_bytes());
            out.extend_from_slice(&record.payload);
            seal(out)
        }
    }
}

/// Frames a batch of payloads to be stored from `start` on.
pub fn encode_batch(epoch: Epoch, start: Offset, payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let batch_end = start + payloads.len() as u64;
    payloads
        .iter()
        .zip(start..)
        .map(|(payload, offset)| encode_entry(epoch, offset, batch_end, payload))
        .collect()
}

/// Checks and unframes the record stored at `offset`.
pub fn decode_entry(
    partition: Partition,
    offset: Offset,
    frame: &[u8],
) -> Result<Record, LogError> {
    let fail = |corruption| LogError::corrupt(partition, RecordRef::Entry(offset), corruption);
    let body = unseal(frame, ENTRY_HEADER_V1).map_err(fail)?;
    let (header, batch_end) = match body[0] {
        1 => (ENTRY_HEADER_V1, None),
        2 if body.len() >= ENTRY_HEADER => (ENTRY_HEADER, Some(u64_at(body, 17))),
        2 => return Err(fail(Corruption::Truncated { len: frame.len() })),
        version => return Err(fail(Corruption::Version(version))),
    };
    let epoch = u64_at(body, 1);
    let found = u64_at(body, 9);
    if found != offset {
        return Err(fail(Corruption::Misplaced { found }));
    }
    Ok(Record {
        offset,
        epoch,
        batch_end,
        payload: body[header..].to_vec(),
    })
}

/// A snapshot as stored: version, offset, digest length, digest, state, checksum.
pub fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let digest_len = snapshot.digest.len() as u32;
    let mut out =
        Vec::with_capacity(SNAPSHOT_HEADER + snapshot.digest.len() + snapshot.state.len() + CRC);
    out.push(SNAPSHOT_FRAME_VERSION);
    out.extend_from_slice(&snapshot.offset.to_le_bytes());
    out.extend_from_slice(&digest_len.to_le_bytes());
    out.extend_from_slice(&snapshot.digest);
    out.extend_from_slice(&snapshot.state);
    seal(out)
}

/// Reads a stored snapshot back, refusing damaged or unknown frames with the corruption.
pub fn decode_snapshot(partition: Partition, frame: &[u8]) -> Result<Snapshot, LogError> {
    let fail = |corruption| LogError::corrupt(partition, RecordRef::Snapshot, corruption);
    let body = unseal(frame, SNAPSHOT_HEADER).map_err(fail)?;
    if body[0] != SNAPSHOT_FRAME_VERSION {
        return Err(fail(Corruption::Version(body[0])));
    }
    let offset = u64_at(body, 1);
    let digest_len = u32::from_le_bytes([body[9], body[10], body[11], body[12]]) as usize;
    let digest_end = SNAPSHOT_HEADER.saturating_add(digest_len);
    if body.len() < digest_end {
        return Err(fail(Corruption::Truncated { len: frame.len() }));
    }
    Ok(Snapshot {
        offset,
        digest: body[SNAPSHOT_HEADER..digest_end].to_vec(),
        state: body[digest_end..].to_vec(),
    })
}

fn seal(mut out: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Verifies length and checksum; returns the frame without its checksum.
fn unseal(frame: &[u8], header: usize) -> Result<&[u8], Corruption> {
    if frame.len() < header + CRC {
        return Err(Corruption::Truncated { len: frame.len() });
    }
    let (body, tail) = frame.split_at(frame.len() - CRC);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(Corruption::Checksum { stored, computed });
    }
    Ok(body)
}

pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_written_into_one_buffer_each_read_back() {
        let mut out = b"head".to_vec();
        write_entry(&mut out, 3, 41, 43, b"first");
        let first_end = out.len();
        write_entry(&mut out, 3, 42, 43, b"");
        assert_eq!(&out[..4], b"head");
        assert_eq!(first_end - 4, entry_frame_len(5));
        assert_eq!(out.len() - first_end, entry_frame_len(0));
        assert_eq!(&out[4..first_end], &encode_entry(3, 41, 43, b"first")[..]);
        let second = decode_entry(7, 42, &out[first_end..]).unwrap();
        assert_eq!((second.epoch, second.batch_end), (3, Some(43)));
        assert!(second.payload.is_empty());
    }

    #[test]
    fn entry_round_trips_and_names_its_offset() {
        let frame = encode_entry(3, 41, 43, b"hello");
        let record = decode_entry(7, 41, &frame).unwrap();
        assert_eq!(
            (
                record.offset,
                record.epoch,
                record.batch_end,
                &record.payload[..]
            ),
            (41, 3, Some(43), &b"hello"[..])
        );
        assert_eq!(encode_record(&record), frame);
        let err = decode_entry(7, 42, &frame).unwrap_err();
        assert_eq!(
            err.to_string(),
            "partition 7, entry 42: record says it is at offset 41"
        );
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let frame = encode_entry(1, 0, 1, b"payload");
        for at in 0..frame.len() {
            let mut bad = frame.clone();
            bad[at] ^= 0x40;
            let err = decode_entry(0, 0, &bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    LogError::Corrupt {
                        partition: 0,
                        record: RecordRef::Entry(0),
                        ..
                    }
                ),
                "{err}"
            );
        }
        for len in 0..frame.len() {
            assert!(decode_entry(0, 0, &frame[..len]).is_err());
        }
    }

    #[test]
    fn version_1_entries_are_read_as_batches_of_one() {
        let v1 = Record {
            offset: 5,
            epoch: 2,
            batch_end: None,
            payload: b"old".to_vec(),
        };
        let frame = encode_record(&v1);
        assert_eq!((frame[0], frame.len()), (1, 17 + 3 + 4));
        assert_eq!(decode_entry(0, 5, &frame).unwrap(), v1);
        let mut future = frame[..frame.len() - 4].to_vec();
        future[0] = 3;
        let err = decode_entry(4, 5, &seal(future)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "partition 4, entry 5: unknown format version 3"
        );
        // A version 2 frame too short to hold its batch end.
        let mut short = frame[..frame.len() - 4].to_vec();
        short[0] = 2;
        assert!(matches!(
            decode_entry(4, 5, &seal(short)),
            Err(LogError::Corrupt {
                corruption: Corruption::Truncated { .. },
                ..
            })
        ));
    }

    #[test]
    fn snapshot_round_trips_and_rejects_damage() {
        let snapshot = Snapshot {
            offset: 900,
            digest: vec![1, 2, 3],
            state: b"state".to_vec(),
        };
        let frame = encode_snapshot(&snapshot);
        assert_eq!(decode_snapshot(0, &frame).unwrap(), snapshot);
        let mut bad = frame.clone();
        bad[12] ^= 1;
        let err = decode_snapshot(5, &bad).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("partition 5, snapshot: checksum mismatch"),
            "{err}"
        );
        let mut future = frame[..frame.len() - 4].to_vec();
        future[0] = 9;
        let err = decode_snapshot(5, &seal(future)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "partition 5, snapshot: unknown format version 9"
        );
    }
}
