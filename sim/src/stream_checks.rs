//! What readers see of task output streams. Simulated workers emit frames that name
//! their lease and their number (`work::frame_of`: task, attempt, epoch, k from 1), so
//! reading a task's stream as a client would tells whose frames it holds and where.
//! The frames of one lease form one segment:
//! - `stream_order`: a segment holds its lease's frames 1, 2, 3, ... each once and in
//!   order, under the attempt the frame names, in the stream of the task it names, and
//!   one lease's segment is never split by another's. A stream that keeps only its
//!   last N frames (bounded, or newest-wins with N = 1) holds exactly the last
//!   min(N, appended) of them, counts the rest as dropped, and only its oldest
//!   segment may start past frame 1;
//! - `stream_lost`: a durable stream holds at least as many of each lease's frames as
//!   the coordinator acknowledged to that lease, and any stream has appended at least
//!   as many as were acknowledged to all its leases, so an acknowledged emit survives
//!   crashes and recovery.
//!
//! A stream is read with its job, once the job's end is released and when the run
//! ends.

use crate::check::{Check, CheckFailure};
use crate::durable::failure;
use keel_engine::{Attempts, Engine, Fence, JobSpec, StreamPage, StreamRead, TaskId, Time};
use std::collections::{BTreeMap, BTreeSet};

/// A lease, as its frames name it: attempt and epoch.
type Lease = (u32, u64);

#[derive(Default)]
pub(crate) struct StreamChecks {
    /// The most frames the coordinator acknowledged to each lease, by task.
    acked: BTreeMap<(TaskId, Lease), u64>,
    /// How many frames each task's stream keeps, for those that do not keep all.
    keeps: BTreeMap<TaskId, u64>,
}

impl StreamChecks {
    /// A job was admitted from `spec`, its tasks numbered from `first`.
    pub(crate) fn admitted(&mut self, first: TaskId, spec: &JobSpec) {
        for (i, t) in spec.tasks.iter().enumerate() {
            if let Some(keeps) = t.stream.keeps() {
                self.keeps.insert(TaskId::nth_after(first, i as u64), keeps);
            }
        }
    }

    /// An emit of `fence` was answered: the lease has `next` frames appended in all.
    pub(crate) fn acknowledged(&mut self, fence: Fence, next: u64) {
        let acked = self
            .acked
            .entry((fence.task, (fence.attempt, fence.epoch)))
            .or_default();
        *acked = (*acked).max(next);
    }

    /// Reads `task`'s whole stream from the engine and checks it.
    pub(crate) fn read(
        &self,
        now: Time,
        engine: &Engine,
        task: TaskId,
    ) -> Result<(), CheckFailure> {
        let read = StreamRead {
            from: 0,
            limit: u32::MAX,
            attempts: Attempts::All,
        };
        // A job past its retention is forgotten: nothing of it is readable.
        let Ok(page) = engine.read_stream(task, read) else {
            return Ok(());
        };
        let keeps = self.keeps.get(&task).copied();
        let fail = |check, detail| Err(failure(now, check, detail));
        if let Err(detail) = kept(task, &page, keeps) {
            return fail(Check::StreamOrder, detail);
        }
        let segments = match segments(task, &page, keeps.is_some()) {
            Ok(segments) => segments,
            Err(detail) => return fail(Check::StreamOrder, detail),
        };
        let lo = (task, (0, 0));
        let hi = (task, (u32::MAX, u64::MAX));
        let mut acked_in_all = 0u64;
        for (&(_, lease), &acked) in self.acked.range(lo..=hi) {
            acked_in_all = acked_in_all.saturating_add(acked);
            let held = segments.get(&lease).copied().unwrap_or(0);
            if keeps.is_none() && held < acked {
                let detail = format!(
                    "task {task}'s stream holds {held} frames of attempt {} epoch {}, but {acked} were acknowledged",
                    lease.0, lease.1
                );
                return fail(Check::StreamLost, detail);
            }
        }
        if page.next < acked_in_all {
            let detail = format!(
                "task {task}'s stream appended {} frames, but {acked_in_all} were acknowledged to its leases",
                page.next
            );
            return fail(Check::StreamLost, detail);
        }
        Ok(())
    }
}

/// A stream that keeps its last `keeps` frames holds exactly the last of those appended
/// (numbered from 0, `page.next` in all) and counts the others as dropped.
fn kept(task: TaskId, page: &StreamPage, keeps: Option<u64>) -> Result<(), String> {
    let appended = page.next;
    let held = page.frames.len() as u64;
    let expected = keeps.map_or(appended, |k| k.min(appended));
    let first = page.frames.first().map_or(appended, |f| f.seq);
    if held != expected || page.dropped != appended - held || first != page.dropped {
        return Err(format!(
            "task {task}'s stream keeps {} of {appended} appended frames, from {first}, with {} dropped; it should keep {expected}",
            held, page.dropped
        ));
    }
    Ok(())
}

/// The frames each lease has in `page`, checking each segment is its lease's frames in
/// order, whole and unsplit; from frame 1, except that with `cut_first` (a stream that
/// lets its oldest frames go) the page's first segment may start later.
fn segments(
    task: TaskId,
    page: &StreamPage,
    cut_first: bool,
) -> Result<BTreeMap<Lease, u64>, String> {
    let mut counts: BTreeMap<Lease, u64> = BTreeMap::new();
    let mut ended: BTreeSet<Lease> = BTreeSet::new();
    let mut current: Option<Lease> = None;
    for f in &page.frames {
        let text = String::from_utf8_lossy(f.data.as_bytes());
        let named = parse(&text).filter(|(t, a, _, _)| *t == task.to_string() && *a == f.attempt);
        let Some((_, attempt, epoch, k)) = named else {
            return Err(format!(
                "frame {} of task {task} (attempt {}) reads {text:?}, not a frame of that task and attempt",
                f.seq, f.attempt
            ));
        };
        let lease = (attempt, epoch);
        let first_of_page = current.is_none();
        if current != Some(lease) {
            if let Some(previous) = current {
                ended.insert(previous);
            }
            if ended.contains(&lease) {
                return Err(format!(
                    "frame {} of task {task} resumes the segment of attempt {attempt} epoch {epoch} after another lease's frames",
                    f.seq
                ));
            }
            current = Some(lease);
        }
        let count = counts.entry(lease).or_default();
        if first_of_page && cut_first && f.seq > 0 {
            *count = u64::from(k).saturating_sub(1);
        }
        if u64::from(k) != *count + 1 {
            return Err(format!(
                "frame {} of task {task} is frame {k} of attempt {attempt} epoch {epoch}, where frame {} comes next",
                f.seq,
                *count + 1
            ));
        }
        *count += 1;
    }
    Ok(counts)
}

/// The task, attempt, epoch and number a simulated frame names (`t3.a1.e2.f4`).
fn parse(text: &str) -> Option<(String, u32, u64, u8)> {
    let mut parts = text.split('.');
    let task = parts.next()?.to_string();
    let attempt = parts.next()?.strip_prefix('a')?.parse().ok()?;
    let epoch = parts.next()?.strip_prefix('e')?.parse().ok()?;
    let k = parts.next()?.strip_prefix('f')?.parse().ok()?;
    parts.next().is_none().then_some((task, attempt, epoch, k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::frame_of;
    use keel_engine::{
        Accepted, ClientCommand, Config, Effect, Input, InstanceId, Payload, StreamMode, TaskSpec,
        WorkerCommand, WorkerId,
    };

    fn fence(attempt: u32, epoch: u64) -> Fence {
        Fence {
            task: TaskId::new(1),
            attempt,
            epoch,
        }
    }

    /// A page of the frames `(attempt, epoch, k)`, numbered in order.
    fn page(frames: &[(u32, u64, u8)]) -> StreamPage {
        let frames = frames
            .iter()
            .enumerate()
            .map(|(seq, &(a, e, k))| keel_engine::StreamFrame {
                seq: seq as u64,
                attempt: a,
                data: Payload::from(frame_of(fence(a, e), k)),
            });
        StreamPage {
            task: TaskId::new(1),
            frames: frames.collect(),
            next: 0,
            first_kept: 0,
            dropped: 0,
            finished: false,
        }
    }

    #[test]
    fn each_lease_s_frames_must_run_from_one_in_order_unsplit() {
        let t = TaskId::new(1);
        let good = segments(
            t,
            &page(&[(1, 1, 1), (1, 1, 2), (2, 2, 1), (2, 3, 1)]),
            false,
        )
        .unwrap();
        assert_eq!(
            good,
            BTreeMap::from([((1, 1), 2), ((2, 2), 1), ((2, 3), 1)])
        );
        let twice = segments(t, &page(&[(1, 1, 1), (1, 1, 2), (1, 1, 2)]), false).unwrap_err();
        assert!(
            twice.contains("frame 2 of attempt 1 epoch 1, where frame 3"),
            "{twice}"
        );
        let gap = segments(t, &page(&[(1, 1, 2)]), false).unwrap_err();
        assert!(gap.contains("where frame 1 comes next"), "{gap}");
        let split = segments(t, &page(&[(1, 1, 1), (2, 2, 1), (1, 1, 2)]), false).unwrap_err();
        assert!(
            split.contains("resumes the segment of attempt 1 epoch 1"),
            "{split}"
        );
        let mut wrong = page(&[(1, 1, 1)]);
        wrong.frames[0].attempt = 2;
        let wrong = segments(t, &wrong, false).unwrap_err();
        assert!(
            wrong.contains("not a frame of that task and attempt"),
            "{wrong}"
        );
        let other = segments(TaskId::new(2), &page(&[(1, 1, 1)]), false).unwrap_err();
        assert!(other.contains("not a frame of that task"), "{other}");
    }

    /// `page` of the frames `(attempt, epoch, k)` numbered from `first`, of `appended`.
    fn cut(frames: &[(u32, u64, u8)], first: u64, appended: u64) -> StreamPage {
        let mut p = page(frames);
        for (i, f) in p.frames.iter_mut().enumerate() {
            f.seq = first + i as u64;
        }
        (p.next, p.dropped, p.first_kept) = (appended, first, first);
        p
    }

    #[test]
    fn a_stream_keeping_its_last_frames_holds_exactly_those() {
        let t = TaskId::new(1);
        // Five appended (three by lease 1, two by lease 2), the last three kept.
        let last3 = cut(&[(1, 1, 3), (2, 2, 1), (2, 2, 2)], 2, 5);
        assert_eq!(kept(t, &last3, Some(3)), Ok(()));
        let counts = segments(t, &last3, true).unwrap();
        assert_eq!(counts, BTreeMap::from([((1, 1), 3), ((2, 2), 2)]));
        // Only the page's first segment may start past frame 1.
        assert!(segments(t, &last3, false).is_err());
        let late = cut(&[(1, 1, 3), (2, 2, 2)], 3, 5);
        assert!(segments(t, &late, true)
            .unwrap_err()
            .contains("where frame 1 comes next"));
        // Too few or too many kept, or the count of dropped ones wrong.
        assert!(kept(t, &last3, Some(2)).is_err());
        assert!(kept(t, &last3, Some(4)).is_err());
        assert!(kept(t, &last3, None).is_err());
        let mut miscounted = last3.clone();
        miscounted.dropped = 1;
        assert!(kept(t, &miscounted, Some(3))
            .unwrap_err()
            .contains("with 1 dropped"));
        // A newest-wins stream of one appended frame keeps it.
        assert_eq!(kept(t, &cut(&[(1, 1, 1)], 0, 1), Some(1)), Ok(()));
        assert_eq!(kept(t, &cut(&[], 0, 0), Some(1)), Ok(()));
    }

    /// An engine whose one task, streaming as `mode`, has had frames 1 and 2 of its
    /// first lease appended; with the checks told of its mode.
    fn two_frames(mode: StreamMode) -> (Engine, Fence, StreamChecks) {
        let mut e = Engine::new(Config::default());
        let (w, i) = (WorkerId::new("w"), InstanceId::new(1));
        let mut t = TaskSpec::new("t");
        t.stream = mode;
        let spec = JobSpec::new("j", vec![t]);
        e.apply(0, Input::Client(ClientCommand::SubmitJob(spec.clone())));
        let reg = WorkerCommand::Register {
            capabilities: vec![],
            lanes: vec![],
            max_concurrency: 1,
        };
        e.apply(0, Input::worker(&w, i, reg));
        let out = e.apply(
            0,
            Input::worker(&w, i, WorkerCommand::RequestWork { credits: 1 }),
        );
        let Some(Effect::GrantOffered { grant, .. }) = out.effects.first().cloned() else {
            panic!("no grant: {out:?}");
        };
        let out = e.apply(
            0,
            Input::worker(&w, i, WorkerCommand::AcceptGrant { grant }),
        );
        let Some(Ok(Accepted::LeaseStarted { fence, .. })) = out.reply else {
            panic!("not accepted: {out:?}");
        };
        let frames = (1..=2).map(|k| Payload::from(frame_of(fence, k))).collect();
        let emit = WorkerCommand::Emit {
            fence,
            from: 0,
            frames,
        };
        e.apply(0, Input::worker(&w, i, emit));
        let mut checks = StreamChecks::default();
        checks.admitted(TaskId::new(1), &spec);
        (e, fence, checks)
    }

    #[test]
    fn a_stream_holding_fewer_frames_than_acknowledged_is_caught() {
        let (e, fence, mut checks) = two_frames(StreamMode::Durable);
        checks.acknowledged(fence, 2);
        assert_eq!(checks.read(5, &e, fence.task), Ok(()));
        checks.acknowledged(fence, 1);
        assert_eq!(checks.read(5, &e, fence.task), Ok(()));
        checks.acknowledged(fence, 3);
        let lost = checks.read(5, &e, fence.task).unwrap_err();
        assert_eq!(lost.check, Check::StreamLost);
        assert!(
            lost.detail.contains("holds 2 frames of attempt 1"),
            "{}",
            lost.detail
        );
    }

    #[test]
    fn a_newest_stream_must_have_appended_every_acknowledged_frame() {
        let (e, fence, mut checks) = two_frames(StreamMode::Newest);
        checks.acknowledged(fence, 2);
        assert_eq!(checks.read(5, &e, fence.task), Ok(()));
        checks.acknowledged(fence, 3);
        let lost = checks.read(5, &e, fence.task).unwrap_err();
        assert_eq!(lost.check, Check::StreamLost);
        assert!(
            lost.detail.contains("appended 2 frames, but 3"),
            "{}",
            lost.detail
        );
    }
}
