//! History checks: what must hold across the coordinator's released outputs and the
//! workers' beliefs, which the engine cannot see from inside. The checker follows the
//! replies and effects in the order the coordinator released them, keeps a shadow of
//! who holds each task, and flags the first thing that breaks a safety property.

use crate::clock::DriftClock;
use crate::ledger::Ledger;
use keel_engine::{
    Accepted, ClientCommand, Effect, Fence, Input, JobOutcome, Rejection, TaskId, Time,
    WorkerCommand,
};
use std::collections::BTreeMap;
use std::fmt;

/// One broken property, with where it broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub at: Time,
    /// A stable name: `engine_invariant`, `double_lease`, `double_commit`,
    /// `stale_completion`, `double_grant`, `worker_cap`, `job_cap`, `tenant_cap`,
    /// `blacklisted_grant`, `capability`, `double_finish`, `recovery_digest`,
    /// `lost_acknowledged_input`, `liveness`.
    pub check: &'static str,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {} ms: {}", self.check, self.at, self.detail)
    }
}

/// A worker's belief that it holds a live lease, until a local-clock deadline.
#[derive(Clone, Copy, Debug)]
struct Belief {
    worker: usize,
    fence: Fence,
    local_deadline: Time,
    /// When this worker started believing in this fence.
    since: Time,
}

#[derive(Default)]
pub struct Checker {
    pub ledger: Ledger,
    beliefs: BTreeMap<TaskId, Vec<Belief>>,
    pub violations: Vec<Violation>,
    /// The local spans a belief can be measured over (lease TTL, liveness timeout).
    trust_ms: Vec<u64>,
}

impl Checker {
    pub fn new(trust_ms: &[u64], tenant_caps: BTreeMap<String, u32>) -> Checker {
        Checker {
            ledger: Ledger::new(tenant_caps),
            trust_ms: trust_ms.to_vec(),
            ..Checker::default()
        }
    }

    pub fn flag(&mut self, at: Time, check: &'static str, detail: String) {
        if self.violations.len() < 16 {
            self.violations.push(Violation { at, check, detail });
        }
    }

    /// A worker started, extended or dropped its belief in a lease. Two workers may
    /// both believe they hold one task only for as long as the older belief's clock
    /// drift allows.
    pub fn belief(
        &mut self,
        now: Time,
        worker: usize,
        task: TaskId,
        held: Option<(Fence, Time)>,
        clocks: &[DriftClock],
    ) {
        let list = self.beliefs.entry(task).or_default();
        let kept = list
            .iter()
            .find(|b| b.worker == worker && held.is_some_and(|(f, _)| f == b.fence))
            .map(|b| b.since);
        list.retain(|b| b.worker != worker);
        // A lease learned of only after its deadline (a reply that waited out a pause)
        // is not believed at all.
        let held = held.filter(|(_, d)| clocks[worker].virtual_at(now, *d) > now);
        let Some((fence, local_deadline)) = held else {
            if list.is_empty() {
                self.beliefs.remove(&task);
            }
            return;
        };
        let n = Belief {
            worker,
            fence,
            local_deadline,
            since: kept.unwrap_or(now),
        };
        list.retain(|b| clocks[b.worker].virtual_at(now, b.local_deadline) > now);
        // Of two overlapping beliefs the one with the older fence is stale; it may
        // outlive the start of the newer one only by its own worker's drift bound.
        let mut found = None;
        for b in list.iter() {
            let (old, new) = if b.fence.epoch < n.fence.epoch {
                (b, &n)
            } else {
                (&n, b)
            };
            let until = clocks[old.worker].virtual_at(now, old.local_deadline);
            // A slow clock strays furthest over the longest span, a fast one that
            // stepped back over the shortest: the bound is the worst of them.
            let clock = &clocks[old.worker];
            let bound = self
                .trust_ms
                .iter()
                .map(|span| clock.drift_bound(*span))
                .max()
                .unwrap_or(0);
            if until > new.since + bound || b.fence == n.fence {
                found = Some(format!(
                    "worker #{} believes it holds {} until {until} ms while worker #{} holds {} since {} ms; drift bound {bound} ms",
                    old.worker, old.fence, new.worker, new.fence, new.since
                ));
            }
        }
        list.push(n);
        if let Some(d) = found {
            self.flag(now, "double_lease", d);
        }
    }

    /// One input as applied by the coordinator, with the outputs it released.
    pub fn released(
        &mut self,
        now: Time,
        input: &Input,
        reply: Option<&Result<Accepted, Rejection>>,
        effects: &[Effect],
    ) {
        if let Some(reply) = reply {
            self.reply(now, input, reply);
        }
        for e in effects {
            self.effect(now, e);
        }
    }

    fn reply(&mut self, now: Time, input: &Input, reply: &Result<Accepted, Rejection>) {
        let l = &mut self.ledger;
        match (input, reply) {
            (
                Input::Client(ClientCommand::SubmitJob(spec)),
                Ok(Accepted::JobSubmitted {
                    job,
                    first_task,
                    duplicate: false,
                    ..
                }),
            ) => {
                l.add_job(*job, *first_task, spec);
            }
            (Input::Client(ClientCommand::SubmitJob(spec)), Err(r)) => {
                l.count("reject", r.code(), None);
                l.job_rejected(&spec.name);
            }
            (
                Input::Worker {
                    worker, command, ..
                },
                reply,
            ) => {
                let w = worker.clone();
                if let Err(r) = reply {
                    l.count("reject", r.code(), Some(&w));
                    l.count(command_kind(command), r.code(), Some(&w));
                    return;
                }
                match (command, reply) {
                    (
                        WorkerCommand::Register {
                            capabilities,
                            max_concurrency,
                            ..
                        },
                        Ok(Accepted::Registered {
                            duplicate: false, ..
                        }),
                    ) => {
                        l.register(&w, capabilities, *max_concurrency);
                        l.count("register", "accepted", Some(&w));
                    }
                    (
                        WorkerCommand::AcceptGrant { grant },
                        Ok(Accepted::LeaseStarted {
                            fence,
                            duplicate: false,
                            ..
                        }),
                    ) => {
                        l.count("lease", "started", Some(&w));
                        if let Err(d) = l.lease(now, &w, *grant, *fence) {
                            self.flag(now, "lease_without_grant", d);
                        }
                    }
                    (WorkerCommand::ReleaseGrant { grant }, Ok(_)) => l.release_grant(*grant),
                    (
                        WorkerCommand::Complete { fence, .. },
                        Ok(Accepted::Completed {
                            duplicate: false, ..
                        }),
                    ) => {
                        l.count("complete", "accepted", Some(&w));
                        self.terminal(now, *fence, "succeeded", true);
                    }
                    (
                        WorkerCommand::Fail { fence, .. },
                        Ok(Accepted::Failed {
                            duplicate: false, ..
                        }),
                    ) => {
                        l.count("fail", "accepted", Some(&w));
                        self.terminal(now, *fence, "failed", false);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// A completion or failure was accepted: it must come from the live lease, and a
    /// task's effect is committed at most once.
    fn terminal(&mut self, now: Time, fence: Fence, outcome: &'static str, commit: bool) {
        if !self.ledger.holds_lease(fence) {
            let d = format!(
                "{outcome} accepted for {fence}, which is not the live lease ({})",
                self.ledger.describe_hold(fence.task)
            );
            self.flag(now, "stale_completion", d);
        }
        if commit && !self.ledger.commit(fence.task) {
            self.flag(
                now,
                "double_commit",
                format!("task {} committed twice (second by {fence})", fence.task),
            );
        }
        self.ledger.end_lease(now, fence, outcome);
    }

    fn effect(&mut self, now: Time, e: &Effect) {
        let l = &mut self.ledger;
        l.count_effect(e);
        match e {
            Effect::GrantOffered {
                worker,
                grant,
                job,
                task,
                ..
            } => {
                for (check, detail) in l.offer(worker, *grant, *job, *task) {
                    self.flag(now, check, detail);
                }
            }
            Effect::GrantWithdrawn { grant, .. } => l.release_grant(*grant),
            Effect::LeaseRevoked { fence, reason, .. } => {
                l.end_lease(now, *fence, reason_name(*reason))
            }
            Effect::TaskRequeued { task, reason, .. } => {
                l.clear_task(now, *task, reason_name(*reason))
            }
            Effect::TaskFinished { task, outcome, .. } => {
                if !l.finish(*task) {
                    self.flag(
                        now,
                        "double_finish",
                        format!("task {task} finished twice ({outcome:?})"),
                    );
                }
                self.ledger.clear_task(now, *task, "finished");
            }
            Effect::JobFinished { job, outcome } if !l.job_done(*job, outcome_name(*outcome)) => {
                self.flag(now, "double_finish", format!("job {job} finished twice"));
            }
            Effect::WorkerLost { worker, .. } => l.clear_worker(now, worker),
            Effect::WorkerBlacklisted { worker, .. } => l.blacklist(worker, true),
            Effect::WorkerReadmitted { worker } => l.blacklist(worker, false),
            _ => {}
        }
    }

    /// After the liveness bound: every job must have ended.
    pub fn liveness(&mut self, now: Time, expected_jobs: &[String]) {
        let stuck: Vec<String> = expected_jobs
            .iter()
            .filter(|j| self.ledger.job_outcome(j).is_none())
            .map(|j| format!("{j} ({})", self.ledger.job_progress(j)))
            .collect();
        if !stuck.is_empty() {
            self.flag(
                now,
                "liveness",
                format!("jobs not terminal after healing: {}", stuck.join(", ")),
            );
        }
    }
}

pub fn reason_name(r: keel_engine::EndReason) -> &'static str {
    r.label()
}

pub fn outcome_name(o: JobOutcome) -> &'static str {
    match o {
        JobOutcome::Succeeded => "succeeded",
        JobOutcome::Failed => "failed",
        JobOutcome::Cancelled => "cancelled",
        JobOutcome::DeadlineExceeded => "deadline_exceeded",
    }
}

/// The short name of a worker command, as used in expectation counts
/// (`complete:stale_fence`, `accept:unknown_grant`).
pub fn command_kind(c: &WorkerCommand) -> &'static str {
    match c {
        WorkerCommand::Register { .. } => "register",
        WorkerCommand::Heartbeat => "heartbeat",
        WorkerCommand::RequestWork { .. } => "request",
        WorkerCommand::Drain => "drain",
        WorkerCommand::Deregister => "deregister",
        WorkerCommand::AcceptGrant { .. } => "accept",
        WorkerCommand::ReleaseGrant { .. } => "release",
        WorkerCommand::Renew { .. } => "renew",
        WorkerCommand::Complete { .. } => "complete",
        WorkerCommand::Fail { .. } => "fail",
        WorkerCommand::Suspend { .. } => "suspend",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fence(task: u64, attempt: u32) -> Fence {
        Fence {
            task: TaskId(task),
            attempt,
            epoch: attempt as u64,
        }
    }

    #[test]
    fn two_live_beliefs_beyond_the_drift_bound_are_flagged() {
        let clocks = [DriftClock::new(0), DriftClock::new(0)];
        let mut c = Checker::new(&[10_000], BTreeMap::new());
        c.belief(1_000, 0, TaskId(1), Some((fence(1, 1), 11_000)), &clocks);
        c.belief(5_000, 1, TaskId(1), Some((fence(1, 2), 15_000)), &clocks);
        assert_eq!(c.violations.len(), 1);
        assert_eq!(c.violations[0].check, "double_lease");
    }

    #[test]
    fn a_fast_clock_that_stepped_back_is_bounded_over_its_shortest_span() {
        // Swarm seed 106832: a worker 5.8% fast, paused, its clock stepped back 15.4 s.
        // Its session (15 s liveness) then ends 28.7 s of virtual time after it began:
        // 13.7 s late, more than the 12.9 s a 30 s lease span allows, within the 13.7 s
        // the 15 s span allows.
        let mut fast = DriftClock::new(57_756);
        fast.step(-15_405);
        let clocks = [fast, DriftClock::new(0)];
        let session_end = clocks[0].local(34_801 + 28_745);
        let start = |spans: &[u64]| {
            let mut c = Checker::new(spans, BTreeMap::new());
            c.belief(
                49_000,
                0,
                TaskId(1),
                Some((fence(1, 1), session_end)),
                &clocks,
            );
            c.belief(49_808, 1, TaskId(1), Some((fence(1, 2), 79_808)), &clocks);
            c.violations.len()
        };
        assert_eq!(start(&[30_000, 15_000]), 0);
        assert_eq!(
            start(&[30_000]),
            1,
            "the long span alone understates the bound"
        );
    }

    #[test]
    fn overlap_within_a_slow_clocks_bound_and_ended_beliefs_pass() {
        // Worker 0's clock is 20% slow: its 10 s lease reads as 12.5 s of virtual time.
        let clocks = [DriftClock::new(-200_000), DriftClock::new(0)];
        let mut c = Checker::new(&[10_000], BTreeMap::new());
        c.belief(0, 0, TaskId(1), Some((fence(1, 1), 10_000)), &clocks);
        c.belief(10_500, 1, TaskId(1), Some((fence(1, 2), 20_500)), &clocks);
        assert!(c.violations.is_empty(), "{:?}", c.violations);
        // A belief that was dropped does not count, nor does one learned of too late.
        c.belief(11_000, 1, TaskId(1), None, &clocks);
        c.belief(11_000, 0, TaskId(1), Some((fence(1, 3), 8_000)), &clocks);
        c.belief(11_500, 1, TaskId(1), Some((fence(1, 4), 21_500)), &clocks);
        assert!(c.violations.is_empty(), "{:?}", c.violations);
    }
}
