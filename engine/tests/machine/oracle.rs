//! An independent record of lease ownership built only from the engine's outputs. It
//! knows which fence is the latest started lease of each task and whether that lease
//! has ended, so it can refuse any completion, failure, renewal or revocation the engine
//! accepts for a fence that is not live, and any answer to a replayed terminal command
//! that differs from the first one.

use keel_engine::*;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub(crate) struct Oracle {
    /// The latest lease started on each task.
    latest: BTreeMap<TaskId, Fence>,
    /// Who started each lease.
    owner: BTreeMap<Fence, WorkerId>,
    /// The fence each accepted grant started.
    accepted: BTreeMap<GrantId, Fence>,
    /// Leases that were completed, failed, suspended or revoked.
    ended: BTreeSet<Fence>,
    completed: BTreeSet<Fence>,
    failed: BTreeMap<Fence, Option<Time>>,
    suspended: BTreeSet<Fence>,
    finished_tasks: BTreeSet<TaskId>,
    finished_jobs: BTreeSet<JobId>,
    /// Frames each lease has had appended.
    emitted: BTreeMap<Fence, u64>,
    /// Each task's stream as it must read: every appended frame's data, in order.
    streams: BTreeMap<TaskId, Vec<String>>,
}

type Check = Result<(), String>;

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

impl Oracle {
    /// The fence must be the latest lease of its task, still running, and `sender`'s.
    fn live(&self, fence: &Fence, sender: &WorkerId, what: &str) -> Check {
        check!(
            self.latest.get(&fence.task) == Some(fence),
            "{what} accepted for {fence}, but the latest started lease of {} is {:?}",
            fence.task,
            self.latest.get(&fence.task)
        );
        check!(
            !self.ended.contains(fence),
            "{what} accepted for {fence} whose lease had already ended"
        );
        check!(
            self.owner.get(fence) == Some(sender),
            "{what} accepted for {fence} from {sender}, but {:?} started it",
            self.owner.get(fence)
        );
        Ok(())
    }

    fn end(&mut self, fence: Fence) {
        self.ended.insert(fence);
    }

    /// Checks one input's outputs against everything seen before, then records them.
    /// The reply is checked before the effects: a lease that the reply ended must not
    /// also be revoked by an effect of the same input, and vice versa.
    pub(crate) fn observe(&mut self, input: &Input, out: &Outputs) -> Check {
        if let (
            Input::Worker {
                worker, command, ..
            },
            Some(Ok(reply)),
        ) = (input, &out.reply)
        {
            self.reply(worker, command, reply)?;
        }
        if let (
            Input::Worker {
                command: WorkerCommand::Emit { fence, from, .. },
                ..
            },
            Some(Err(Rejection::StreamGap { expected, got, .. })),
        ) = (input, &out.reply)
        {
            let have = self.emitted.get(fence).copied().unwrap_or(0);
            check!(
                (*expected, *got) == (have, *from) && have < *from,
                "emit on {fence} from {from} refused as a gap after {expected} (got {got}), but {have} were appended"
            );
        }
        for e in &out.effects {
            self.effect(e)?;
        }
        Ok(())
    }

    fn reply(&mut self, w: &WorkerId, cmd: &WorkerCommand, reply: &Accepted) -> Check {
        match reply {
            Accepted::LeaseStarted {
                fence, duplicate, ..
            } => {
                let WorkerCommand::AcceptGrant { grant } = cmd else {
                    return Err(format!("LeaseStarted answering {cmd:?}"));
                };
                if *duplicate {
                    check!(
                        self.accepted.get(grant) == Some(fence),
                        "replayed accept of {grant} answered {fence}, first answer {:?}",
                        self.accepted.get(grant)
                    );
                    return Ok(());
                }
                if let Some(prev) = self.latest.get(&fence.task) {
                    check!(
                        fence.epoch > prev.epoch && fence.attempt >= prev.attempt,
                        "lease {fence} started after {prev}: epoch or attempt went back"
                    );
                    check!(
                        self.ended.contains(prev),
                        "lease {fence} started while {prev} was still live"
                    );
                }
                check!(
                    !self.finished_tasks.contains(&fence.task),
                    "lease {fence} started on a finished task"
                );
                self.latest.insert(fence.task, *fence);
                self.owner.insert(*fence, w.clone());
                self.accepted.insert(*grant, *fence);
            }
            Accepted::Renewed { fence, .. } => self.live(fence, w, "renewal")?,
            Accepted::Completed { fence, duplicate } => {
                if *duplicate {
                    check!(
                        self.completed.contains(fence) && self.owner.get(fence) == Some(w),
                        "replayed completion of {fence} by {w} answered as a duplicate of a completion never accepted"
                    );
                } else {
                    self.live(fence, w, "completion")?;
                    self.end(*fence);
                    self.completed.insert(*fence);
                }
            }
            Accepted::Failed {
                fence,
                duplicate,
                retry_at,
            } => {
                if *duplicate {
                    check!(
                        self.failed.get(fence) == Some(retry_at) && self.owner.get(fence) == Some(w),
                        "replayed failure of {fence} answered retry_at {retry_at:?}, first answer {:?}",
                        self.failed.get(fence)
                    );
                } else {
                    self.live(fence, w, "failure")?;
                    self.end(*fence);
                    self.failed.insert(*fence, *retry_at);
                }
            }
            Accepted::Emitted {
                fence,
                next,
                dropped,
                duplicate,
            } => {
                let WorkerCommand::Emit { from, frames, .. } = cmd else {
                    return Err(format!("Emitted answering {cmd:?}"));
                };
                self.live(fence, w, "emit")?;
                self.emitted_frames(*fence, *from, frames, (*next, *dropped, *duplicate))?;
            }
            Accepted::Suspended { fence, duplicate } => {
                if *duplicate {
                    check!(
                        self.suspended.contains(fence),
                        "replayed suspension of {fence} answered as a duplicate of none"
                    );
                } else {
                    self.live(fence, w, "suspension")?;
                    self.end(*fence);
                    self.suspended.insert(*fence);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// An accepted emit of `frames` from `from` on the live lease `fence`: it appends
    /// exactly the frames past those the lease already appended, in order.
    fn emitted_frames(
        &mut self,
        fence: Fence,
        from: u64,
        frames: &[Payload],
        (next, dropped, duplicate): (u64, u64, bool),
    ) -> Check {
        let have = self.emitted.get(&fence).copied().unwrap_or(0);
        let end = from + frames.len() as u64;
        check!(
            from <= have,
            "emit on {fence} from {from} accepted after only {have} frames: a gap"
        );
        check!(
            next == have.max(end) && dropped == 0,
            "emit on {fence} of {from}..{end} after {have} answered next {next}, dropped {dropped}"
        );
        check!(
            duplicate == (!frames.is_empty() && end <= have),
            "emit on {fence} of {from}..{end} after {have} answered duplicate={duplicate}"
        );
        let stream = self.streams.entry(fence.task).or_default();
        for f in frames.iter().skip((have - from) as usize) {
            stream.push(String::from_utf8_lossy(f.as_bytes()).into_owned());
        }
        self.emitted.insert(fence, next);
        Ok(())
    }

    /// What task `task`'s stream must hold: every appended frame's data, in order.
    pub(crate) fn stream(&self, task: TaskId) -> &[String] {
        self.streams.get(&task).map_or(&[], Vec::as_slice)
    }

    fn effect(&mut self, e: &Effect) -> Check {
        match e {
            Effect::LeaseRevoked { worker, fence, .. } => {
                self.live(fence, worker, "revocation")?;
                self.end(*fence);
            }
            Effect::GrantOffered { task, .. } => {
                check!(
                    !self.finished_tasks.contains(task),
                    "grant offered for finished task {task}"
                );
                if let Some(f) = self.latest.get(task) {
                    check!(
                        self.ended.contains(f),
                        "grant offered for {task} while its lease {f} is live"
                    );
                }
            }
            Effect::TaskFinished { task, .. } => {
                check!(
                    self.finished_tasks.insert(*task),
                    "task {task} finished twice"
                );
                if let Some(f) = self.latest.get(task) {
                    check!(
                        self.ended.contains(f),
                        "task {task} finished while its lease {f} is live"
                    );
                }
            }
            Effect::JobFinished { job, .. } => {
                check!(self.finished_jobs.insert(*job), "job {job} finished twice");
            }
            _ => {}
        }
        Ok(())
    }
}
