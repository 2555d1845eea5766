//! The simulated coordinator's disk: a snapshot and a log of appended batches, kept as
//! bytes as a file would hold them. Each batch is one frame: a header (body length,
//! body checksum, and a checksum of those two) and a body (the log position of its
//! first input, then the inputs with their times). Recovery reads whole, checksummed
//! frames in order; an incomplete frame at the very end is a torn write and is dropped,
//! while a complete frame that fails its checksum (or breaks the sequence) is
//! corruption and stops recovery: it never starts from less than was acknowledged.
//!
//! Faults: the next append can fail (nothing is written) or tear (part of the frame is
//! written and the process dies), one byte of what is durable can be flipped, and
//! fsyncs can be slow.

use crate::rng::SimRng;
use keel_engine::{Input, Time};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

/// Length (4 bytes), body checksum (8), header checksum over both (8).
const HEADER: usize = 20;

/// One logged input: when it was applied, and what it was.
pub(crate) type Entry = (Time, Input);

#[derive(Deserialize)]
struct Body {
    /// Log position of the first entry (positions count inputs from 1).
    first: u64,
    entries: Vec<Entry>,
}

/// The same encoding as [`Body`], written from borrowed entries.
#[derive(Serialize)]
struct BodyRef<'a> {
    first: u64,
    entries: &'a [Entry],
}

/// A fault waiting for the next append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArmedFault {
    /// The append fails and writes nothing.
    Fail,
    /// The process dies mid-append, leaving part of the frame on disk.
    Tear,
}

/// What became of one append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Append {
    /// The whole frame is on disk.
    Written,
    /// Refused: nothing was written.
    Failed,
    /// Only `kept` of the frame's `len` bytes reached the disk before the crash.
    Torn { kept: usize, len: usize },
}

/// Why recovery stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Corruption {
    /// Byte offset of the bad frame in the log, or `None` for the snapshot.
    pub offset: Option<usize>,
    pub why: String,
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(at) => write!(f, "log corrupt at byte {at}: {}", self.why),
            None => write!(f, "snapshot corrupt: {}", self.why),
        }
    }
}

/// What recovery read back.
pub(crate) struct Recovered {
    pub snapshot: Vec<u8>,
    /// Log position the snapshot covers.
    pub snapshot_position: u64,
    /// The entries after the snapshot, one list per batch as it was appended: a long
    /// log is read without growing (and copying) one list of all its entries.
    pub batches: Vec<Vec<Entry>>,
    /// Entries in all the batches.
    pub count: u64,
    /// Bytes of a torn frame at the end, dropped.
    pub torn_bytes: usize,
}

impl Recovered {
    /// Log position of the last input recovered.
    pub(crate) fn position(&self) -> u64 {
        self.snapshot_position + self.count
    }

    /// Every entry, in log order.
    pub(crate) fn entries(self) -> impl Iterator<Item = Entry> {
        self.batches.into_iter().flatten()
    }
}

pub(crate) struct Storage {
    snapshot: Vec<u8>,
    snapshot_position: u64,
    log: Vec<u8>,
    /// End offsets of the complete, synced frames in `log`.
    frame_ends: Vec<usize>,
    /// Where the frame being written starts, until its fsync completes: a crash before
    /// then loses it.
    unsynced_from: Option<usize>,
    armed: Option<ArmedFault>,
    /// A byte of the snapshot or of a complete frame was flipped and is still there.
    corrupted: bool,
    /// Extra time every append takes (a slow fsync); 0 completes at once.
    pub fsync_ms: u64,
}

/// `frame` is a header's worth of room followed by a body: fills in the header.
fn seal(frame: &mut [u8]) {
    let len = (frame.len() - HEADER) as u32;
    frame[..4].copy_from_slice(&len.to_le_bytes());
    let body_sum = xxh3_64(&frame[HEADER..]);
    frame[4..12].copy_from_slice(&body_sum.to_le_bytes());
    let header_sum = xxh3_64(&frame[..12]);
    frame[12..HEADER].copy_from_slice(&header_sum.to_le_bytes());
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + body.len());
    framed(&mut out, |out| out.extend_from_slice(body));
    out
}

/// Appends a frame to `out`: a header's worth of room, the body `write` puts after it,
/// then the header sealed over that body.
fn framed(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    write(out);
    seal(&mut out[start..]);
}

/// Writes into the end of a borrowed buffer, so a batch is encoded straight into the
/// log instead of into a buffer of its own that is then copied.
struct Appender<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Appender<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, bytes: I) {
        self.0.extend(bytes);
    }
}

fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Reads one frame at the start of `bytes`: `Ok(None)` if it is incomplete (torn).
fn unframe(bytes: &[u8]) -> Result<Option<&[u8]>, String> {
    if bytes.len() < HEADER {
        return Ok(None);
    }
    if read_u64(&bytes[12..20]) != xxh3_64(&bytes[..12]) {
        return Err("frame header checksum mismatch".into());
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&bytes[..4]);
    let len = u32::from_le_bytes(len) as usize;
    let Some(body) = bytes.get(HEADER..HEADER + len) else {
        return Ok(None);
    };
    if read_u64(&bytes[4..12]) != xxh3_64(body) {
        return Err("frame body checksum mismatch".into());
    }
    Ok(Some(body))
}

impl Storage {
    /// Storage holding only `snapshot`, the state before any input.
    pub(crate) fn new(snapshot: &[u8]) -> Storage {
        Storage {
            snapshot: frame(snapshot),
            snapshot_position: 0,
            log: Vec::new(),
            frame_ends: Vec::new(),
            unsynced_from: None,
            armed: None,
            corrupted: false,
            fsync_ms: 0,
        }
    }

    pub(crate) fn arm(&mut self, fault: ArmedFault) {
        self.armed = Some(fault);
    }

    /// Faults heal: nothing stays armed and fsyncs are fast again. A flipped byte stays
    /// flipped: disks do not heal.
    pub(crate) fn heal(&mut self) {
        self.armed = None;
        self.fsync_ms = 0;
    }

    pub(crate) fn corrupted(&self) -> bool {
        self.corrupted
    }

    /// Bytes of log since the last snapshot.
    pub(crate) fn log_bytes(&self) -> usize {
        self.log.len()
    }

    pub(crate) fn snapshot_bytes(&self) -> usize {
        self.snapshot.len()
    }

    /// Appends one batch whose first entry has log position `first`. A written frame is
    /// durable once [`Storage::sync`] completes; a torn one stays on disk as it is.
    pub(crate) fn append(&mut self, first: u64, entries: &[Entry], rng: &mut SimRng) -> Append {
        let armed = self.armed.take();
        if armed == Some(ArmedFault::Fail) {
            return Append::Failed;
        }
        let start = self.log.len();
        framed(&mut self.log, |log| {
            // Encoding plain engine values into a Vec cannot fail.
            let _ = postcard::to_extend(&BodyRef { first, entries }, Appender(log));
        });
        if armed == Some(ArmedFault::Tear) {
            let len = self.log.len() - start;
            let kept = rng.below(len as u64) as usize;
            self.log.truncate(start + kept);
            return Append::Torn { kept, len };
        }
        self.unsynced_from = Some(start);
        Append::Written
    }

    /// The fsync of the last written frame completed: it is durable. Returns that
    /// frame (empty when none was being written).
    pub(crate) fn sync(&mut self) -> &[u8] {
        match self.unsynced_from.take() {
            Some(from) => {
                self.frame_ends.push(self.log.len());
                &self.log[from..]
            }
            None => &[],
        }
    }

    /// The process died: a frame whose fsync had not completed is lost.
    pub(crate) fn crash(&mut self) {
        if let Some(from) = self.unsynced_from.take() {
            self.log.truncate(from);
        }
    }

    /// Replaces the snapshot with one covering every input up to `position`, and drops
    /// the log it covers.
    pub(crate) fn install_snapshot(&mut self, position: u64, snapshot: &[u8]) {
        self.snapshot = frame(snapshot);
        self.snapshot_position = position;
        self.log.clear();
        self.frame_ends.clear();
        self.unsynced_from = None;
        self.corrupted = false;
    }

    /// Flips one byte of the snapshot or of a synced frame; returns where, in words.
    pub(crate) fn corrupt(&mut self, rng: &mut SimRng) -> String {
        let whole = self.frame_ends.last().copied().unwrap_or(0);
        let at = rng.below((self.snapshot.len() + whole) as u64) as usize;
        let flip = 1 + rng.below(255) as u8;
        self.corrupted = true;
        if at < self.snapshot.len() {
            self.snapshot[at] ^= flip;
            format!("snapshot byte {at}")
        } else {
            let at = at - self.snapshot.len();
            self.log[at] ^= flip;
            format!("log byte {at}")
        }
    }

    /// Reads back the snapshot and every whole batch, or says why it cannot.
    pub(crate) fn recover(&self) -> Result<Recovered, Corruption> {
        let snapshot = match unframe(&self.snapshot) {
            Ok(Some(body)) => body.to_vec(),
            Ok(None) => return Err(corrupt_at(None, "snapshot incomplete".into())),
            Err(why) => return Err(corrupt_at(None, why)),
        };
        let frames = read_frames(&self.log, self.snapshot_position + 1)?;
        Ok(Recovered {
            snapshot,
            snapshot_position: self.snapshot_position,
            batches: frames.batches,
            count: frames.count,
            torn_bytes: self.log.len() - frames.end,
        })
    }

    /// After a recovery: cuts a torn tail off, so the next append follows whole frames.
    pub(crate) fn drop_torn_tail(&mut self, torn_bytes: usize) {
        self.log.truncate(self.log.len() - torn_bytes);
    }

    /// Test access: drops the last synced frame, as a log that lost it would.
    #[cfg(test)]
    pub(crate) fn drop_last_frame(&mut self) {
        self.frame_ends.pop();
        self.log
            .truncate(self.frame_ends.last().copied().unwrap_or(0));
    }
}

/// The whole batches at the start of a log.
pub(crate) struct Frames {
    /// One list of entries per batch, in log order.
    pub batches: Vec<Vec<Entry>>,
    /// Entries in all the batches.
    pub count: u64,
    /// Where the whole batches end: a torn one may follow.
    pub end: usize,
}

/// Decodes the frames of `log`, whose first entry has position `first`, up to a torn
/// tail; a frame that fails its checksum, does not decode or is out of sequence is
/// corruption at its offset.
pub(crate) fn read_frames(log: &[u8], first: u64) -> Result<Frames, Corruption> {
    let mut batches = Vec::new();
    let mut at = 0;
    let mut next = first;
    while at < log.len() {
        let body = match unframe(&log[at..]) {
            Ok(Some(body)) => body,
            Ok(None) => break,
            Err(why) => return Err(corrupt_at(Some(at), why)),
        };
        let body: Body = postcard::from_bytes(body)
            .map_err(|e| corrupt_at(Some(at), format!("batch does not decode: {e}")))?;
        if body.first != next {
            let why = format!("batch starts at input {}, expected {next}", body.first);
            return Err(corrupt_at(Some(at), why));
        }
        next += body.entries.len() as u64;
        batches.push(body.entries);
        at += HEADER + (body_len(&log[at..]));
    }
    Ok(Frames {
        batches,
        count: next - first,
        end: at,
    })
}

fn corrupt_at(offset: Option<usize>, why: String) -> Corruption {
    Corruption { offset, why }
}

fn body_len(frame: &[u8]) -> usize {
    let mut len = [0u8; 4];
    len.copy_from_slice(&frame[..4]);
    u32::from_le_bytes(len) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Stream;
    use keel_engine::{ClientCommand, JobId};

    fn entry(i: u64) -> Entry {
        (
            i,
            Input::Client(ClientCommand::CancelJob { job: JobId::new(i) }),
        )
    }

    /// Storage with three batches of two entries each.
    fn three_batches() -> (Storage, SimRng) {
        let mut rng = SimRng::new(1, Stream::Run);
        let mut s = Storage::new(b"state");
        for b in 0..3u64 {
            let first = 2 * b + 1;
            let out = s.append(first, &[entry(first), entry(first + 1)], &mut rng);
            assert_eq!(out, Append::Written);
            s.sync();
        }
        (s, rng)
    }

    #[test]
    fn whole_batches_come_back_in_order() {
        let (s, _) = three_batches();
        let r = s.recover().unwrap();
        assert_eq!(r.snapshot, b"state");
        assert_eq!(r.position(), 6);
        assert_eq!(r.batches.len(), 3);
        assert_eq!(r.torn_bytes, 0);
        assert_eq!(r.entries().nth(5), Some(entry(6)));
    }

    #[test]
    fn a_torn_last_batch_is_dropped_and_cut_off() {
        let (mut s, mut rng) = three_batches();
        s.arm(ArmedFault::Tear);
        let out = s.append(7, &[entry(7)], &mut rng);
        let Append::Torn { kept, len } = out else {
            panic!("{out:?}")
        };
        assert!(kept < len);
        let r = s.recover().unwrap();
        assert_eq!((r.position(), r.torn_bytes), (6, kept));
        s.drop_torn_tail(r.torn_bytes);
        assert_eq!(s.append(7, &[entry(7)], &mut rng), Append::Written);
        assert_eq!(s.recover().unwrap().position(), 7);
    }

    #[test]
    fn a_frame_whose_fsync_never_completed_is_lost_in_a_crash() {
        let (mut s, mut rng) = three_batches();
        assert_eq!(s.append(7, &[entry(7)], &mut rng), Append::Written);
        s.crash();
        assert_eq!(s.recover().unwrap().position(), 6);
        assert_eq!(s.append(7, &[entry(7)], &mut rng), Append::Written);
        s.sync();
        s.crash();
        assert_eq!(s.recover().unwrap().position(), 7);
    }

    #[test]
    fn a_failed_append_writes_nothing() {
        let (mut s, mut rng) = three_batches();
        let before = s.log_bytes();
        s.arm(ArmedFault::Fail);
        assert_eq!(s.append(7, &[entry(7)], &mut rng), Append::Failed);
        assert_eq!(s.log_bytes(), before);
        assert_eq!(s.append(7, &[entry(7)], &mut rng), Append::Written);
    }

    #[test]
    fn any_flipped_byte_is_refused_never_read_as_less() {
        // Every byte of the snapshot and of every frame, header or body, in turn.
        let (clean, _) = three_batches();
        let total = clean.snapshot.len() + clean.log.len();
        for at in 0..total {
            let mut s = Storage {
                snapshot: clean.snapshot.clone(),
                log: clean.log.clone(),
                frame_ends: clean.frame_ends.clone(),
                ..Storage::new(b"")
            };
            if at < s.snapshot.len() {
                s.snapshot[at] ^= 0x40;
            } else {
                s.log[at - clean.snapshot.len()] ^= 0x40;
            }
            let r = s.recover();
            assert!(
                r.is_err(),
                "byte {at} flipped, yet recovered {:?}",
                r.map(|r| r.position())
            );
        }
    }

    #[test]
    fn corrupt_flips_a_durable_byte_and_a_snapshot_clears_it() {
        let (mut s, mut rng) = three_batches();
        let what = s.corrupt(&mut rng);
        assert!(s.corrupted(), "{what}");
        let e = s.recover().err().expect("refused");
        assert!(!e.to_string().is_empty());
        s.install_snapshot(6, b"later");
        assert!(!s.corrupted());
        assert_eq!(s.recover().unwrap().position(), 6);
    }

    #[test]
    fn a_missing_batch_breaks_the_sequence() {
        let (mut s, mut rng) = three_batches();
        assert_eq!(s.append(9, &[entry(9)], &mut rng), Append::Written);
        let e = s.recover().err().expect("a gap is refused");
        assert!(e.why.contains("expected 7"), "{e}");
    }
}
