//! A simulated worker: the protocol a real worker SDK follows, on its own drifting
//! clock. It registers, heartbeats, asks for work, accepts grants, renews its leases,
//! and completes or fails attempts, resending terminal reports until answered. It acts
//! on what it has been told, so a paused worker that wakes up after its lease expired
//! still reports its result: the coordinator's fencing must refuse it.

use crate::work::TaskWork;
use keel_engine::{
    Accepted, Effect, Fence, GrantId, InstanceId, Rejection, TaskId, Time, WorkerCommand, WorkerId,
};
use std::collections::{BTreeMap, BTreeSet};

/// A worker's own timers, armed in local milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WTimer {
    Heartbeat,
    WorkDone(Fence),
    Renew(Fence),
    Resend(u64),
}

/// What the worker asks the world to do.
#[derive(Clone, Debug, PartialEq)]
pub enum WOut {
    Send(u64, WorkerCommand),
    Timer(u64, WTimer),
    /// The worker now believes it holds `fence` until this local time, or no longer
    /// believes it holds a lease on the task.
    Belief(TaskId, Option<(Fence, Time)>),
}

#[derive(Clone, Debug)]
pub struct WorkerParams {
    pub id: WorkerId,
    pub capabilities: Vec<String>,
    pub max_concurrency: u32,
    pub slowness: f64,
    pub fail_rate: f64,
    pub lease_ttl_ms: u64,
    /// The coordinator declares a worker lost after this much silence, and revokes
    /// its leases; a worker not heard back from for this long must stop trusting them.
    pub liveness_timeout_ms: u64,
    pub heartbeat_ms: u64,
    pub resend_ms: u64,
    /// Position in the scenario; instance ids are `ordinal * 1000 + incarnation`.
    pub ordinal: u64,
}

#[derive(Clone, Debug)]
struct Attempt {
    fence: Fence,
    work: TaskWork,
    /// Local time until which the worker believes its lease is live.
    deadline: Time,
    /// Work finished and a report is on its way.
    reported: bool,
}

#[derive(Clone, Debug)]
struct Pending {
    cmd: WorkerCommand,
    sent_local: Time,
    /// Resent until answered: registration and terminal reports.
    resend: bool,
}

/// Whether an attempt fails on this worker; decided by the world's RNG.
pub type FailDraw<'a> = &'a mut dyn FnMut(f64) -> bool;

pub struct SimWorker {
    pub p: WorkerParams,
    pub instance: InstanceId,
    registered: bool,
    /// Grants accepted, waiting for the lease to start.
    offers: BTreeMap<GrantId, (TaskId, TaskWork)>,
    attempts: BTreeMap<TaskId, Attempt>,
    pending: BTreeMap<u64, Pending>,
    next_req: u64,
    /// Local time until which the coordinator cannot have declared this process lost:
    /// the send time of the last answered request plus the liveness timeout.
    session_until: Time,
    /// Leases this process has run, so a late or duplicated reply cannot start one twice.
    started: BTreeSet<Fence>,
    /// Counts process starts; timers of an earlier process are ignored.
    pub process: u64,
}

impl SimWorker {
    pub fn new(p: WorkerParams) -> SimWorker {
        SimWorker {
            instance: InstanceId(p.ordinal * 1_000),
            p,
            registered: false,
            offers: BTreeMap::new(),
            attempts: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_req: 0,
            session_until: 0,
            started: BTreeSet::new(),
            process: 0,
        }
    }

    /// Starts (or restarts) from nothing: a new process with a new instance id.
    pub fn boot(&mut self, now: Time, out: &mut Vec<WOut>) {
        self.process += 1;
        self.reincarnate(now, out);
        out.push(WOut::Timer(self.p.heartbeat_ms, WTimer::Heartbeat));
    }

    /// Drops everything and registers again as a new instance, as a real worker does
    /// when the coordinator says it has declared this process lost.
    fn reincarnate(&mut self, now: Time, out: &mut Vec<WOut>) {
        self.forget(out);
        self.instance = InstanceId(self.instance.0 + 1);
        self.register(now, out);
    }

    /// The process is gone; whatever it believed ends with it.
    pub fn forget(&mut self, out: &mut Vec<WOut>) {
        for task in self.attempts.keys() {
            out.push(WOut::Belief(*task, None));
        }
        self.attempts.clear();
        self.offers.clear();
        self.pending.clear();
        self.registered = false;
        self.session_until = 0;
    }

    fn free(&self) -> u32 {
        let busy = (self.attempts.len() + self.offers.len()) as u32;
        self.p.max_concurrency.saturating_sub(busy)
    }

    fn send(&mut self, now: Time, cmd: WorkerCommand, resend: bool, out: &mut Vec<WOut>) {
        self.next_req += 1;
        let req = self.next_req;
        if resend {
            out.push(WOut::Timer(self.p.resend_ms, WTimer::Resend(req)));
        }
        self.pending.insert(
            req,
            Pending {
                cmd: cmd.clone(),
                sent_local: now,
                resend,
            },
        );
        out.push(WOut::Send(req, cmd));
    }

    fn register(&mut self, now: Time, out: &mut Vec<WOut>) {
        let cmd = WorkerCommand::Register {
            capabilities: self.p.capabilities.clone(),
            lanes: Vec::new(),
            max_concurrency: self.p.max_concurrency,
        };
        self.send(now, cmd, true, out);
    }

    fn ask_for_work(&mut self, now: Time, out: &mut Vec<WOut>) {
        if self.registered {
            let credits = self.free();
            self.send(now, WorkerCommand::RequestWork { credits }, false, out);
        }
    }

    pub fn on_timer(&mut self, now: Time, timer: WTimer, fails: FailDraw, out: &mut Vec<WOut>) {
        match timer {
            WTimer::Heartbeat => {
                if self.registered {
                    self.send(now, WorkerCommand::Heartbeat, false, out);
                    self.ask_for_work(now, out);
                }
                out.push(WOut::Timer(self.p.heartbeat_ms, WTimer::Heartbeat));
            }
            WTimer::Renew(fence) => {
                if self
                    .attempts
                    .get(&fence.task)
                    .is_some_and(|a| a.fence == fence && !a.reported)
                {
                    self.send(now, WorkerCommand::Renew { fence }, false, out);
                    out.push(WOut::Timer(self.renew_every(), WTimer::Renew(fence)));
                }
            }
            WTimer::WorkDone(fence) => self.finish(now, fence, fails, out),
            WTimer::Resend(req) => {
                if let Some(p) = self.pending.get(&req).filter(|p| p.resend) {
                    out.push(WOut::Send(req, p.cmd.clone()));
                    out.push(WOut::Timer(self.p.resend_ms, WTimer::Resend(req)));
                }
            }
        }
    }

    fn renew_every(&self) -> u64 {
        (self.p.lease_ttl_ms / 3).max(1)
    }

    /// The work is done: report it, whatever the lease's state, as a real process that
    /// was never told otherwise would.
    fn finish(&mut self, now: Time, fence: Fence, fails: FailDraw, out: &mut Vec<WOut>) {
        let Some(a) = self
            .attempts
            .get_mut(&fence.task)
            .filter(|a| a.fence == fence && !a.reported)
        else {
            return;
        };
        a.reported = true;
        let poisoned = fence.attempt <= a.work.fail_attempts as u32;
        let cmd = if poisoned || fails(self.p.fail_rate) {
            WorkerCommand::Fail {
                fence,
                error: if poisoned {
                    "task failed"
                } else {
                    "worker fault"
                }
                .into(),
                permanent: false,
            }
        } else {
            WorkerCommand::Complete {
                fence,
                output: keel_engine::Payload::from("ok"),
            }
        };
        out.push(WOut::Belief(fence.task, None));
        self.send(now, cmd, true, out);
    }

    pub fn on_reply(
        &mut self,
        now: Time,
        req: u64,
        reply: &Result<Accepted, Rejection>,
        out: &mut Vec<WOut>,
    ) {
        let Some(p) = self.pending.remove(&req) else {
            return; // a duplicate reply, or one for a request this process never made
        };
        if reply.is_ok() {
            self.extend_session(p.sent_local + self.p.liveness_timeout_ms, out);
        }
        if let Err(r) = reply {
            if matches!(
                r,
                Rejection::WorkerLost { .. }
                    | Rejection::StaleInstance { .. }
                    | Rejection::UnknownWorker { .. }
            ) {
                // The coordinator no longer knows this process: start over.
                self.reincarnate(now, out);
                return;
            }
        }
        match (p.cmd, reply) {
            (WorkerCommand::Register { .. }, Ok(_)) => {
                self.registered = true;
                self.ask_for_work(now, out);
            }
            (WorkerCommand::AcceptGrant { grant }, Ok(Accepted::LeaseStarted { fence, .. })) => {
                let fence = *fence;
                let Some((_, work)) = self.offers.remove(&grant) else {
                    return;
                };
                if !self.started.insert(fence) {
                    return;
                }
                let deadline = p.sent_local + self.p.lease_ttl_ms;
                let run = (work.duration_ms as f64 * self.p.slowness).round() as u64;
                let a = Attempt {
                    fence,
                    work,
                    deadline,
                    reported: false,
                };
                out.push(WOut::Belief(
                    fence.task,
                    Some((fence, self.trusted_until(&a))),
                ));
                self.attempts.insert(fence.task, a);
                out.push(WOut::Timer(run, WTimer::WorkDone(fence)));
                out.push(WOut::Timer(self.renew_every(), WTimer::Renew(fence)));
            }
            (WorkerCommand::AcceptGrant { grant }, _) => {
                self.offers.remove(&grant);
                self.ask_for_work(now, out);
            }
            (WorkerCommand::Renew { fence }, Ok(Accepted::Renewed { .. })) => {
                if let Some(a) = self
                    .attempts
                    .get_mut(&fence.task)
                    .filter(|a| a.fence == fence && !a.reported)
                {
                    a.deadline = a.deadline.max(p.sent_local + self.p.lease_ttl_ms);
                    let until = a.deadline.min(self.session_until);
                    out.push(WOut::Belief(fence.task, Some((fence, until))));
                }
            }
            (WorkerCommand::Renew { fence }, Err(_)) => self.drop_attempt(now, fence, out),
            (WorkerCommand::Complete { fence, .. } | WorkerCommand::Fail { fence, .. }, _) => {
                self.drop_attempt(now, fence, out);
            }
            _ => {}
        }
    }

    /// A lease is trusted until its own deadline or the session's, whichever is first.
    fn trusted_until(&self, a: &Attempt) -> Time {
        a.deadline.min(self.session_until)
    }

    fn extend_session(&mut self, until: Time, out: &mut Vec<WOut>) {
        if until <= self.session_until {
            return;
        }
        self.session_until = until;
        for a in self.attempts.values().filter(|a| !a.reported) {
            out.push(WOut::Belief(
                a.fence.task,
                Some((a.fence, self.trusted_until(a))),
            ));
        }
    }

    fn drop_attempt(&mut self, now: Time, fence: Fence, out: &mut Vec<WOut>) {
        if self
            .attempts
            .get(&fence.task)
            .is_some_and(|a| a.fence == fence)
        {
            let a = self.attempts.remove(&fence.task);
            if a.is_some_and(|a| !a.reported) {
                out.push(WOut::Belief(fence.task, None));
            }
            self.ask_for_work(now, out);
        }
    }

    pub fn on_effect(&mut self, now: Time, effect: &Effect, out: &mut Vec<WOut>) {
        match effect {
            Effect::GrantOffered {
                grant,
                task,
                payload,
                ..
            } => {
                if !self.registered || self.free() == 0 {
                    self.send(
                        now,
                        WorkerCommand::ReleaseGrant { grant: *grant },
                        false,
                        out,
                    );
                    return;
                }
                self.offers
                    .insert(*grant, (*task, TaskWork::decode(payload)));
                // Resent until answered, so a lost reply cannot hold the slot forever;
                // the engine answers a repeated accept consistently.
                self.send(now, WorkerCommand::AcceptGrant { grant: *grant }, true, out);
            }
            Effect::GrantWithdrawn { grant, .. } => {
                self.offers.remove(grant);
            }
            Effect::LeaseRevoked { fence, .. } => self.drop_attempt(now, *fence, out),
            Effect::WorkerLost { instance, .. } if *instance == self.instance => {
                self.reincarnate(now, out);
            }
            Effect::WorkerReadmitted { .. } => self.ask_for_work(now, out),
            _ => {}
        }
    }
}
