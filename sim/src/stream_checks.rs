//! What readers see of task output streams. Simulated workers emit frames that name
//! their lease and their number (`work::frame_of`: task, attempt, epoch, k from 1), so
//! reading a task's stream as a client would tells whose frames it holds and where.
//! The frames of one lease form one segment:
//! - `stream_order`: a segment holds its lease's frames 1, 2, 3, ... each once and in
//!   order, under the attempt the frame names, in the stream of the task it names, and
//!   one lease's segment is never split by another's;
//! - `stream_lost`: a segment holds at least as many frames as the coordinator
//!   acknowledged to its lease, so an acknowledged emit survives crashes and recovery.
//!
//! A stream is read with its job, once the job's end is released and when the run
//! ends. Only durable streams (every simulated task's) keep every frame.

use crate::check::{Check, CheckFailure};
use crate::durable::failure;
use keel_engine::{Attempts, Engine, Fence, StreamPage, StreamRead, TaskId, Time};
use std::collections::{BTreeMap, BTreeSet};

/// A lease, as its frames name it: attempt and epoch.
type Lease = (u32, u64);

#[derive(Default)]
pub(crate) struct StreamChecks {
    /// The most frames the coordinator acknowledged to each lease, by task.
    acked: BTreeMap<(TaskId, Lease), u64>,
}

impl StreamChecks {
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
        let fail = |check, detail| Err(failure(now, check, detail));
        let segments = match segments(task, &page) {
            Ok(segments) => segments,
            Err(detail) => return fail(Check::StreamOrder, detail),
        };
        let lo = (task, (0, 0));
        let hi = (task, (u32::MAX, u64::MAX));
        for (&(_, lease), &acked) in self.acked.range(lo..=hi) {
            let kept = segments.get(&lease).copied().unwrap_or(0);
            if kept < acked {
                let detail = format!(
                    "task {task}'s stream holds {kept} frames of attempt {} epoch {}, but {acked} were acknowledged",
                    lease.0, lease.1
                );
                return fail(Check::StreamLost, detail);
            }
        }
        Ok(())
    }
}

/// The frames each lease has in `page`, checking each segment is its lease's frames
/// from 1 in order, whole and unsplit.
fn segments(task: TaskId, page: &StreamPage) -> Result<BTreeMap<Lease, u64>, String> {
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
        Accepted, ClientCommand, Config, Effect, Input, InstanceId, JobSpec, Payload, TaskSpec,
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
        let good = segments(t, &page(&[(1, 1, 1), (1, 1, 2), (2, 2, 1), (2, 3, 1)])).unwrap();
        assert_eq!(
            good,
            BTreeMap::from([((1, 1), 2), ((2, 2), 1), ((2, 3), 1)])
        );
        let twice = segments(t, &page(&[(1, 1, 1), (1, 1, 2), (1, 1, 2)])).unwrap_err();
        assert!(
            twice.contains("frame 2 of attempt 1 epoch 1, where frame 3"),
            "{twice}"
        );
        let gap = segments(t, &page(&[(1, 1, 2)])).unwrap_err();
        assert!(gap.contains("where frame 1 comes next"), "{gap}");
        let split = segments(t, &page(&[(1, 1, 1), (2, 2, 1), (1, 1, 2)])).unwrap_err();
        assert!(
            split.contains("resumes the segment of attempt 1 epoch 1"),
            "{split}"
        );
        let mut wrong = page(&[(1, 1, 1)]);
        wrong.frames[0].attempt = 2;
        let wrong = segments(t, &wrong).unwrap_err();
        assert!(
            wrong.contains("not a frame of that task and attempt"),
            "{wrong}"
        );
        let other = segments(TaskId::new(2), &page(&[(1, 1, 1)])).unwrap_err();
        assert!(other.contains("not a frame of that task"), "{other}");
    }

    #[test]
    fn a_stream_holding_fewer_frames_than_acknowledged_is_caught() {
        let mut e = Engine::new(Config::default());
        let (w, i) = (WorkerId::new("w"), InstanceId::new(1));
        let spec = JobSpec::new("j", vec![TaskSpec::new("t")]);
        e.apply(0, Input::Client(ClientCommand::SubmitJob(spec)));
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
}
