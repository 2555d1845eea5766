//! What consumers read through streaming edges. A simulated consumer reads each of its
//! edges a few times while it runs, as `task.stream` would, and acknowledges what it
//! read; every frame names its producer's lease and its number (`work::frame_of`), so
//! each page is checked as it is read:
//! - `edge_order`: within one consumer attempt, frames come in strictly rising
//!   positions, never twice; a `newest` edge gives at most one frame a read;
//! - `edge_stale`: every frame is of the producer's latest lease at the read: once a
//!   newer lease holds the producer, an older lease's frames are never delivered;
//! - `edge_lost`: on a `fifo` or `block` edge, or a `broadcast` edge from a durable
//!   stream, frame k of a lease comes only after frame k - 1 of that lease reached the
//!   consumer (this attempt or an earlier one): nothing is skipped, across consumer
//!   retries and coordinator crashes. On every edge, a frame of the latest lease that a
//!   read passes over without delivering is one its policy lets go: on `newest`, one
//!   with a newer frame after it (and a frame given is the newest kept); on
//!   `drop_oldest` with capacity C, one with C newer frames after it, and each such
//!   frame counted in the edge's `dropped`; on the others, none;
//! - `edge_redelivered`: no frame below a cursor the coordinator acknowledged to the
//!   consumer is delivered again, to any of its attempts.

use crate::check::Check;
use keel_engine::{
    Attempts, EdgePage, EdgePolicy, Engine, Fence, JobSpec, OnFull, StreamMode, StreamRead, TaskId,
};
use std::collections::{BTreeMap, BTreeSet};

/// A consumer's edge: the consumer and the producer's key.
type EdgeKey = (TaskId, String);

/// A lease of a producer, as its frames name it: attempt and epoch.
type Lease = (u32, u64);

#[derive(Default)]
pub(crate) struct EdgeChecks {
    /// Each edge's producer, policy, and whether it must deliver every frame.
    edges: BTreeMap<EdgeKey, (TaskId, EdgePolicy, bool)>,
    /// Where each consumer attempt's next read starts (`None` before its first).
    cursors: BTreeMap<(Fence, String), u64>,
    /// The frames of each producer lease that reached each edge's consumer, by number.
    delivered: BTreeMap<EdgeKey, BTreeSet<(Lease, u32)>>,
    /// The highest cursor the coordinator acknowledged on each edge.
    acked: BTreeMap<EdgeKey, u64>,
    /// The frames a `drop_oldest` edge passed over, by sequence number.
    dropped: BTreeMap<EdgeKey, BTreeSet<u64>>,
}

impl EdgeChecks {
    /// A job was admitted from `spec`, its tasks numbered from `first`.
    pub(crate) fn admitted(&mut self, first: TaskId, spec: &JobSpec) {
        let id = |key: &str| {
            let i = spec.tasks.iter().position(|t| t.key == key)?;
            Some(TaskId::nth_after(first, i as u64))
        };
        let durable = |key: &str| {
            spec.tasks
                .iter()
                .any(|t| t.key == key && t.stream == StreamMode::Durable)
        };
        for (i, t) in spec.tasks.iter().enumerate() {
            let consumer = TaskId::nth_after(first, i as u64);
            for e in &t.stream_from {
                let whole = match e.policy {
                    EdgePolicy::Fifo => true,
                    EdgePolicy::Bounded { on_full, .. } => on_full == OnFull::Block,
                    EdgePolicy::Broadcast => durable(&e.from),
                    EdgePolicy::Newest => false,
                };
                if let Some(producer) = id(&e.from) {
                    self.edges
                        .insert((consumer, e.from.clone()), (producer, e.policy, whole));
                }
            }
        }
    }

    /// Where attempt `fence`'s next read of the edge from `from` starts.
    pub(crate) fn cursor(&self, fence: Fence, from: &str) -> Option<u64> {
        self.cursors.get(&(fence, from.to_string())).copied()
    }

    /// The coordinator acknowledged cursor `acked` on `consumer`'s edge from `from`.
    pub(crate) fn acknowledged(&mut self, consumer: TaskId, from: &str, acked: u64) {
        let at = self.acked.entry((consumer, from.to_string())).or_default();
        *at = (*at).max(acked);
    }

    /// Attempt `fence` read `page` of its edge from `from`, from the engine as it is
    /// now; checks it and moves the attempt's cursor past it.
    pub(crate) fn read(
        &mut self,
        engine: &Engine,
        fence: Fence,
        from: &str,
        page: &EdgePage,
    ) -> Result<(), (Check, String)> {
        let key = (fence.task, from.to_string());
        let Some(&(producer, policy, whole)) = self.edges.get(&key) else {
            return Ok(());
        };
        let latest = engine.describe_task(producer).map_or(0, |t| t.epoch);
        let here = format!("{} reading {from:?} ({producer})", fence);
        if policy == EdgePolicy::Newest && page.frames.len() > 1 {
            let n = page.frames.len();
            return Err((
                Check::EdgeOrder,
                format!("{here}: a newest edge gave {n} frames"),
            ));
        }
        let acked = self.acked.get(&key).copied().unwrap_or(0);
        // Where the engine's read started: the attempt's cursor (or the acknowledged
        // one on its first read), never below the acknowledged cursor.
        let start = self
            .cursor(fence, from)
            .unwrap_or(page.acked)
            .max(page.acked);
        let passed = Passed::over(engine, producer, start, page, latest);
        self.let_go(&key, policy, &passed, page)
            .map_err(|(check, why)| (check, format!("{here}: {why}")))?;
        let mut floor = self.cursor(fence, from).unwrap_or(0);
        let seen = self.delivered.entry(key).or_default();
        for f in &page.frames {
            let text = String::from_utf8_lossy(f.data.as_bytes()).into_owned();
            let Some((lease, k)) = lease_of(&text) else {
                let why = format!("{here}: frame {} is {text:?}", f.seq);
                return Err((Check::EdgeOrder, why));
            };
            let at = format!("{here}: frame {} ({text})", f.seq);
            let broken = if f.seq < floor {
                Some((Check::EdgeOrder, format!("where {floor} was due")))
            } else if lease.1 != latest {
                Some((
                    Check::EdgeStale,
                    format!("while epoch {latest} holds the producer"),
                ))
            } else if f.seq < acked {
                Some((
                    Check::EdgeRedelivered,
                    format!("below the acknowledged cursor {acked}"),
                ))
            } else if whole && k > 1 && !seen.contains(&(lease, k - 1)) {
                Some((
                    Check::EdgeLost,
                    format!("without frame {} of its lease", k - 1),
                ))
            } else {
                None
            };
            if let Some((check, why)) = broken {
                return Err((check, format!("{at} {why}")));
            }
            seen.insert((lease, k));
            floor = f.seq + 1;
        }
        self.cursors.insert((fence, from.to_string()), page.next);
        Ok(())
    }
}

/// What a read passed over: the kept frames of the producer's latest lease from where
/// it started up to its `next` that it did not deliver, and the newest kept frame.
struct Passed {
    skipped: Vec<u64>,
    newest: Option<u64>,
}

impl Passed {
    fn over(engine: &Engine, producer: TaskId, start: u64, page: &EdgePage, latest: u64) -> Self {
        let read = StreamRead {
            from: start,
            limit: u32::MAX,
            attempts: Attempts::All,
        };
        let kept = engine.read_stream(producer, read).map(|p| p.frames);
        let kept = kept.unwrap_or_default();
        let of_latest = |f: &&keel_engine::StreamFrame| {
            lease_of(&String::from_utf8_lossy(f.data.as_bytes()))
                .is_some_and(|(l, _)| l.1 == latest)
        };
        let given: BTreeSet<u64> = page.frames.iter().map(|f| f.seq).collect();
        let skipped = kept
            .iter()
            .filter(of_latest)
            .filter(|f| f.seq < page.next && !given.contains(&f.seq))
            .map(|f| f.seq)
            .collect();
        Passed {
            skipped,
            newest: kept.last().map(|f| f.seq),
        }
    }
}

impl EdgeChecks {
    /// Whether the frames `passed` are ones `policy` lets go.
    fn let_go(
        &mut self,
        key: &EdgeKey,
        policy: EdgePolicy,
        passed: &Passed,
        page: &EdgePage,
    ) -> Result<(), (Check, String)> {
        let lost = |why: String| Err((Check::EdgeLost, why));
        let newest = passed.newest.unwrap_or(0);
        if let (EdgePolicy::Newest, Some(f)) = (policy, page.frames.last()) {
            if f.seq != newest {
                return lost(format!(
                    "a newest edge gave frame {} while {newest} is kept",
                    f.seq
                ));
            }
        }
        for &seq in &passed.skipped {
            match policy {
                EdgePolicy::Newest if seq < newest => {}
                EdgePolicy::Bounded {
                    capacity,
                    on_full: OnFull::DropOldest,
                } if seq.saturating_add(u64::from(capacity)) <= newest => {
                    self.dropped.entry(key.clone()).or_default().insert(seq);
                }
                _ => return lost(format!("frame {seq} was passed over")),
            }
        }
        let counted = self.dropped.get(key).map_or(0, BTreeSet::len) as u64;
        if counted > page.dropped {
            return lost(format!(
                "{counted} frames were dropped, but the edge counts {}",
                page.dropped
            ));
        }
        Ok(())
    }
}

/// The lease and number a simulated frame names: `t5.a1.e2.f3`.
fn lease_of(text: &str) -> Option<(Lease, u32)> {
    let mut parts = text.split('.').skip(1);
    let attempt = parts.next()?.strip_prefix('a')?.parse().ok()?;
    let epoch = parts.next()?.strip_prefix('e')?.parse().ok()?;
    let k = parts.next()?.strip_prefix('f')?.parse().ok()?;
    Some(((attempt, epoch), k))
}

#[cfg(test)]
#[path = "edge_checks_tests.rs"]
mod tests;
