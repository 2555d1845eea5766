//! Batch records: the entry frames of one append stored as a single record, for stores
//! where each record costs more than its bytes (a Valkey list element is an allocation,
//! an argument to parse, and a line of its append-only file).
//!
//! Batch frame, version 3: `3 | count u64 | (frame_len u64 | entry frame)*`, each entry
//! frame whole with its own checksum ([`crate::record`]), so a damaged batch is found
//! entry by entry and a count or length that lies misframes an entry and fails its
//! checksum. A store may hold single entry frames and batch frames side by side:
//! [`decode_entries`] reads both.

use crate::error::{Corruption, LogError, RecordRef};
use crate::record::ENTRY_HEADER;
use crate::record::{decode_entry, entry_frame_len, entry_header, frame_offset, u64_at, CRC};
use crate::{Epoch, Offset, Partition, Record};
use std::io::{self, Write};
use std::ops::Range;

/// Format version of batch frames.
pub const BATCH_FRAME_VERSION: u8 = 3;

const BATCH_HEADER: usize = 1 + 8;
const LEN: usize = 8;

/// Bytes of the batch frame of `payloads`.
pub fn batch_frame_len(payloads: &[Vec<u8>]) -> usize {
    BATCH_HEADER
        + payloads
            .iter()
            .map(|p| LEN + entry_frame_len(p.len()))
            .sum::<usize>()
}

/// The records an append of `payloads` is stored in, as ranges of its payloads: as
/// many entries in each as fit in `max_bytes` of batch frame, and at least one, so a
/// large append is several records, none of them near a store's limit on one value.
pub fn records(payloads: &[Vec<u8>], max_bytes: usize) -> Vec<Range<usize>> {
    let mut records = Vec::new();
    let (mut start, mut bytes) = (0, BATCH_HEADER);
    for (i, payload) in payloads.iter().enumerate() {
        let len = LEN + entry_frame_len(payload.len());
        if i > start && bytes.saturating_add(len) > max_bytes {
            records.push(start..i);
            (start, bytes) = (i, BATCH_HEADER);
        }
        bytes = bytes.saturating_add(len);
    }
    if start < payloads.len() {
        records.push(start..payloads.len());
    }
    records
}

/// Writes the batch frame of `payloads`, stored from `start` under `epoch` in an append
/// that ends at `batch_end`, to `out`, each payload once and straight from where it
/// lies (no frame is built in a buffer of its own first).
pub fn write_batch<W: Write>(
    out: &mut W,
    epoch: Epoch,
    start: Offset,
    batch_end: Offset,
    payloads: &[Vec<u8>],
) -> io::Result<()> {
    out.write_all(&[BATCH_FRAME_VERSION])?;
    out.write_all(&(payloads.len() as u64).to_le_bytes())?;
    for (payload, offset) in payloads.iter().zip(start..) {
        let header = entry_header(epoch, offset, batch_end);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        crc.update(payload);
        out.write_all(&(entry_frame_len(payload.len()) as u64).to_le_bytes())?;
        out.write_all(&header)?;
        out.write_all(payload)?;
        out.write_all(&crc.finalize().to_le_bytes())?;
    }
    Ok(())
}

/// The batch frame of a whole append of `payloads`, in a buffer of its own.
pub fn encode_batch_frame(epoch: Epoch, start: Offset, payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch_frame_len(payloads));
    let batch_end = start + payloads.len() as u64;
    // Writing into a Vec cannot fail.
    let _ = write_batch(&mut out, epoch, start, batch_end, payloads);
    out
}

/// The entries of one stored record: a batch frame, or a single entry frame. `at` is
/// the offset the reader expects next, named by errors in a record too damaged to say
/// its own.
pub fn decode_entries(
    partition: Partition,
    at: Offset,
    stored: &[u8],
) -> Result<Vec<Record>, LogError> {
    if stored.first() != Some(&BATCH_FRAME_VERSION) {
        let offset = frame_offset(stored).unwrap_or(at);
        return decode_entry(partition, offset, stored).map(|record| vec![record]);
    }
    let fail =
        |offset, corruption| LogError::corrupt(partition, RecordRef::Entry(offset), corruption);
    let truncated = Corruption::Truncated { len: stored.len() };
    if stored.len() < BATCH_HEADER {
        return Err(fail(at, truncated));
    }
    let count = u64_at(stored, 1);
    let mut rest = &stored[BATCH_HEADER..];
    let smallest = LEN + ENTRY_HEADER + CRC;
    let mut records = Vec::with_capacity((count as usize).min(rest.len() / smallest));
    let mut next: Option<Offset> = None;
    for _ in 0..count {
        let expected = next.unwrap_or(at);
        let Some(len) = rest.get(..LEN).map(|bytes| u64_at(bytes, 0)) else {
            return Err(fail(expected, truncated));
        };
        rest = &rest[LEN..];
        let Some(frame) = usize::try_from(len).ok().and_then(|len| rest.get(..len)) else {
            return Err(fail(expected, truncated));
        };
        rest = &rest[frame.len()..];
        // The first entry says where the batch starts; the rest follow it.
        let offset = next.or_else(|| frame_offset(frame)).unwrap_or(at);
        records.push(decode_entry(partition, offset, frame)?);
        next = Some(offset.wrapping_add(1));
    }
    if !rest.is_empty() {
        let extra = Corruption::Trailing { extra: rest.len() };
        return Err(fail(next.unwrap_or(at), extra));
    }
    Ok(records)
}

/// The entries `from..` (at most `max`) held by `stored`, records read in order from
/// the one holding `from`: the first record may begin before `from`, and the last may
/// run past what is wanted. An entry out of sequence stops the read as misplaced.
pub fn entries_from(
    partition: Partition,
    from: Offset,
    max: usize,
    stored: impl IntoIterator<Item = Vec<u8>>,
) -> Result<Vec<Record>, LogError> {
    let mut records = Vec::new();
    let mut next = from;
    for bytes in stored {
        for record in decode_entries(partition, next, &bytes)? {
            if records.is_empty() && record.offset < from {
                continue;
            }
            if records.len() == max {
                return Ok(records);
            }
            if record.offset != next {
                let found = record.offset;
                let misplaced = Corruption::Misplaced { found };
                return Err(LogError::corrupt(
                    partition,
                    RecordRef::Entry(next),
                    misplaced,
                ));
            }
            records.push(record);
            next += 1;
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::encode_entry;

    fn payloads(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i as u8; i * 3]).collect()
    }

    fn offsets(records: &[Record]) -> Vec<Offset> {
        records.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn a_batch_holds_the_entry_frames_of_its_append() {
        let batch = payloads(3);
        let frame = encode_batch_frame(2, 10, &batch);
        assert_eq!(frame.len(), batch_frame_len(&batch));
        let records = decode_entries(5, 10, &frame).unwrap();
        assert_eq!(offsets(&records), vec![10, 11, 12]);
        for (record, payload) in records.iter().zip(&batch) {
            assert_eq!((record.epoch, record.batch_end), (2, Some(13)));
            assert_eq!(&record.payload, payload);
        }
        // The entry frames inside are the ones a store of single frames keeps.
        let second = encode_entry(2, 11, 13, &batch[1]);
        let at = frame.windows(second.len()).position(|w| w == second);
        assert!(at.is_some(), "entry 11's frame is in the batch whole");
        let single = decode_entries(5, 99, &second).unwrap();
        assert_eq!(
            offsets(&single),
            vec![11],
            "a single frame names its own offset"
        );
        assert!(decode_entries(5, 0, &encode_batch_frame(1, 0, &[]))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn an_append_is_cut_into_records_that_fit_and_keep_its_end() {
        let batch = payloads(6);
        let lens: Vec<usize> = batch
            .iter()
            .map(|p| LEN + entry_frame_len(p.len()))
            .collect();
        assert_eq!(lens, [37, 40, 43, 46, 49, 52], "each with its length");
        assert_eq!(records(&batch, usize::MAX), vec![(0..6)]);
        assert_eq!(records(&batch, 9 + 46 + 49), [0..2, 2..4, 4..5, 5..6]);
        assert_eq!(records(&batch, 9 + 37 + 40), [0..2, 2..3, 3..4, 4..5, 5..6]);
        let singles = [0..1, 1..2, 2..3, 3..4, 4..5, 5..6];
        assert_eq!(records(&batch, 9 + 37 + 40 - 1), singles);
        assert_eq!(records(&batch, 0), singles, "an entry too large goes alone");
        assert!(records(&[], 100).is_empty());
        // A record of the middle of an append names the append's end.
        let mut out = Vec::new();
        write_batch(&mut out, 2, 12, 16, &batch[2..4]).unwrap();
        let middle = decode_entries(0, 12, &out).unwrap();
        assert_eq!(offsets(&middle), [12, 13]);
        assert!(middle.iter().all(|r| r.batch_end == Some(16)));
    }

    #[test]
    fn every_flipped_byte_and_every_cut_is_caught() {
        let frame = encode_batch_frame(1, 4, &payloads(3));
        for at in 0..frame.len() {
            let mut bad = frame.clone();
            bad[at] ^= 0x40;
            match decode_entries(0, 4, &bad) {
                Err(LogError::Corrupt { partition: 0, .. }) => {}
                other => panic!("byte {at} flipped: {other:?}"),
            }
        }
        for len in 0..frame.len() {
            assert!(decode_entries(0, 4, &frame[..len]).is_err(), "cut at {len}");
        }
        let mut longer = frame.clone();
        longer.extend_from_slice(b"xy");
        assert_eq!(
            decode_entries(3, 4, &longer).unwrap_err().to_string(),
            "partition 3, entry 7: 2 bytes after the last entry of a batch"
        );
    }

    #[test]
    fn a_read_starts_inside_a_batch_and_stops_at_its_limit() {
        let stored = || {
            vec![
                encode_batch_frame(1, 0, &payloads(3)),
                encode_batch_frame(2, 3, &payloads(2)),
                encode_entry(2, 5, 6, b"single"),
            ]
        };
        let read = |from, max| offsets(&entries_from(0, from, max, stored()).unwrap());
        assert_eq!(read(1, 3), vec![1, 2, 3]);
        assert_eq!(read(4, 10), vec![4, 5]);
        assert_eq!(read(0, 6), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(read(2, 0), Vec::<Offset>::new());
        let gap = vec![
            encode_batch_frame(1, 0, &payloads(3)),
            encode_batch_frame(1, 5, &payloads(1)),
        ];
        assert_eq!(
            entries_from(6, 1, 10, gap).unwrap_err().to_string(),
            "partition 6, entry 3: record says it is at offset 5"
        );
    }
}
