//! A simulated worker: the protocol a real worker SDK follows, on its own drifting
//! clock. It registers, heartbeats, asks for work, accepts grants, renews its leases,
//! and completes or fails attempts, resending terminal reports until answered. It acts
//! on what it has been told, so a paused worker that wakes up after its lease expired
//! still reports its result: the coordinator's fencing must refuse it.
//!
//! A scenario script can turn its automatic acceptance and renewal off and send
//! commands of its own (`script.rs`).

use crate::work::TaskWork;
use keel_engine::{
    Accepted, Effect, Fence, GrantId, InstanceId, Rejection, TaskId, Time, WorkerCommand, WorkerId,
};
use std::collections::{BTreeMap, BTreeSet};

/// A worker's own timers, armed in local milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerTimer {
    Heartbeat,
    WorkDone(Fence),
    Renew(Fence),
    Resend(u64),
}

/// What the worker asks the world to do.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkerOutput {
    /// Send a command under this request id.
    Send(u64, WorkerCommand),
    /// Arm a timer this many local milliseconds from now.
    Timer(u64, WorkerTimer),
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
    /// Position in the scenario, from 1; instance ids are `ordinal * 1000 + incarnation`.
    pub ordinal: u64,
}

impl WorkerParams {
    /// The instance id of the worker's `incarnation`-th process.
    pub fn instance(&self, incarnation: u64) -> InstanceId {
        InstanceId(self.ordinal * 1_000 + incarnation)
    }
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
    command: WorkerCommand,
    sent_local: Time,
    /// Resent until answered: registration and terminal reports.
    resend: bool,
}

/// Whether an attempt fails on this worker; decided by the world's RNG.
pub type FailDraw<'a> = &'a mut dyn FnMut(f64) -> bool;

pub struct SimWorker {
    pub params: WorkerParams,
    /// Counts registrations as a new process; the instance id follows it.
    incarnation: u64,
    registered: bool,
    /// Grants offered and not accepted, while a script holds acceptance off.
    unaccepted: BTreeMap<GrantId, (TaskId, TaskWork)>,
    /// Grants accepted, waiting for the lease to start.
    offers: BTreeMap<GrantId, (TaskId, TaskWork)>,
    attempts: BTreeMap<TaskId, Attempt>,
    pending: BTreeMap<u64, Pending>,
    next_request: u64,
    /// Local time until which the coordinator cannot have declared this process lost:
    /// the send time of the last answered request plus the liveness timeout.
    session_until: Time,
    /// Leases this process has run, so a late or duplicated reply cannot start one twice.
    started: BTreeSet<Fence>,
    /// Counts process starts; timers of an earlier process are ignored.
    pub process: u64,
    /// Accept grants as they are offered (a script can turn this off).
    pub accepting: bool,
    /// Renew leases on schedule (a script can turn this off).
    pub renewing: bool,
}

impl SimWorker {
    pub fn new(params: WorkerParams) -> SimWorker {
        SimWorker {
            params,
            incarnation: 0,
            registered: false,
            unaccepted: BTreeMap::new(),
            offers: BTreeMap::new(),
            attempts: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_request: 0,
            session_until: 0,
            started: BTreeSet::new(),
            process: 0,
            accepting: true,
            renewing: true,
        }
    }

    pub fn instance(&self) -> InstanceId {
        self.params.instance(self.incarnation)
    }

    /// Starts (or restarts) from nothing: a new process with a new instance id.
    pub fn boot(&mut self, now: Time, out: &mut Vec<WorkerOutput>) {
        self.process += 1;
        self.reincarnate(now, out);
        out.push(WorkerOutput::Timer(
            self.params.heartbeat_ms,
            WorkerTimer::Heartbeat,
        ));
    }

    /// Drops everything and registers again as a new instance, as a real worker does
    /// when the coordinator says it has declared this process lost.
    pub fn reincarnate(&mut self, now: Time, out: &mut Vec<WorkerOutput>) {
        self.forget(out);
        self.incarnation += 1;
        self.register(now, out);
    }

    /// The process is gone; whatever it believed ends with it.
    pub fn forget(&mut self, out: &mut Vec<WorkerOutput>) {
        for task in self.attempts.keys() {
            out.push(WorkerOutput::Belief(*task, None));
        }
        self.attempts.clear();
        self.offers.clear();
        self.unaccepted.clear();
        self.pending.clear();
        self.registered = false;
        self.session_until = 0;
    }

    pub fn free(&self) -> u32 {
        let busy = (self.attempts.len() + self.offers.len() + self.unaccepted.len()) as u32;
        self.params.max_concurrency.saturating_sub(busy)
    }

    /// Sends a command, tracked so its reply is handled.
    pub fn send(
        &mut self,
        now: Time,
        command: WorkerCommand,
        resend: bool,
        out: &mut Vec<WorkerOutput>,
    ) {
        self.next_request += 1;
        let request = self.next_request;
        if resend {
            out.push(WorkerOutput::Timer(
                self.params.resend_ms,
                WorkerTimer::Resend(request),
            ));
        }
        self.pending.insert(
            request,
            Pending {
                command: command.clone(),
                sent_local: now,
                resend,
            },
        );
        out.push(WorkerOutput::Send(request, command));
    }

    fn register(&mut self, now: Time, out: &mut Vec<WorkerOutput>) {
        let command = WorkerCommand::Register {
            capabilities: self.params.capabilities.clone(),
            lanes: Vec::new(),
            max_concurrency: self.params.max_concurrency,
        };
        self.send(now, command, true, out);
    }

    fn ask_for_work(&mut self, now: Time, out: &mut Vec<WorkerOutput>) {
        if self.registered {
            let credits = self.free();
            self.send(now, WorkerCommand::RequestWork { credits }, false, out);
        }
    }

    pub fn on_timer(
        &mut self,
        now: Time,
        timer: WorkerTimer,
        fails: FailDraw,
        out: &mut Vec<WorkerOutput>,
    ) {
        match timer {
            WorkerTimer::Heartbeat => {
                if self.registered {
                    self.send(now, WorkerCommand::Heartbeat, false, out);
                    self.ask_for_work(now, out);
                }
                out.push(WorkerOutput::Timer(
                    self.params.heartbeat_ms,
                    WorkerTimer::Heartbeat,
                ));
            }
            WorkerTimer::Renew(fence) => {
                if self
                    .attempts
                    .get(&fence.task)
                    .is_some_and(|a| a.fence == fence && !a.reported)
                {
                    if self.renewing {
                        self.send(now, WorkerCommand::Renew { fence }, false, out);
                    }
                    let every = self.renew_every();
                    out.push(WorkerOutput::Timer(every, WorkerTimer::Renew(fence)));
                }
            }
            WorkerTimer::WorkDone(fence) => self.finish(now, fence, fails, out),
            WorkerTimer::Resend(request) => {
                if let Some(p) = self.pending.get(&request).filter(|p| p.resend) {
                    out.push(WorkerOutput::Send(request, p.command.clone()));
                    out.push(WorkerOutput::Timer(
                        self.params.resend_ms,
                        WorkerTimer::Resend(request),
                    ));
                }
            }
        }
    }

    fn renew_every(&self) -> u64 {
        (self.params.lease_ttl_ms / 3).max(1)
    }

    /// The work is done: report it, whatever the lease's state, as a real process that
    /// was never told otherwise would.
    fn finish(&mut self, now: Time, fence: Fence, fails: FailDraw, out: &mut Vec<WorkerOutput>) {
        let Some(a) = self
            .attempts
            .get_mut(&fence.task)
            .filter(|a| a.fence == fence && !a.reported)
        else {
            return;
        };
        a.reported = true;
        let poisoned = fence.attempt <= a.work.fail_attempts as u32;
        let command = if poisoned || fails(self.params.fail_rate) {
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
        out.push(WorkerOutput::Belief(fence.task, None));
        self.send(now, command, true, out);
    }

    pub fn on_reply(
        &mut self,
        now: Time,
        request: u64,
        reply: &Result<Accepted, Rejection>,
        out: &mut Vec<WorkerOutput>,
    ) {
        let Some(p) = self.pending.remove(&request) else {
            return; // a duplicate reply, or one for a request this process never made
        };
        if reply.is_ok() {
            self.extend_session(p.sent_local + self.params.liveness_timeout_ms, out);
        }
        if let Err(
            Rejection::WorkerLost { .. }
            | Rejection::StaleInstance { .. }
            | Rejection::UnknownWorker { .. },
        ) = reply
        {
            // The coordinator no longer knows this process: start over.
            self.reincarnate(now, out);
            return;
        }
        match (p.command, reply) {
            (WorkerCommand::Register { .. }, Ok(_)) => {
                self.registered = true;
                self.ask_for_work(now, out);
            }
            (WorkerCommand::AcceptGrant { grant }, Ok(Accepted::LeaseStarted { fence, .. })) => {
                self.lease_started(grant, *fence, p.sent_local, out);
            }
            (WorkerCommand::AcceptGrant { grant }, _) => {
                self.offers.remove(&grant);
                self.ask_for_work(now, out);
            }
            (WorkerCommand::Renew { fence }, Ok(Accepted::Renewed { .. })) => {
                self.renewed(fence, p.sent_local, out);
            }
            (WorkerCommand::Renew { fence }, Err(_)) => self.drop_attempt(now, fence, out),
            (WorkerCommand::Complete { fence, .. } | WorkerCommand::Fail { fence, .. }, _) => {
                self.drop_attempt(now, fence, out);
            }
            _ => {}
        }
    }

    /// An accept was answered with a lease: the work starts, and so do renewals.
    fn lease_started(
        &mut self,
        grant: GrantId,
        fence: Fence,
        sent_local: Time,
        out: &mut Vec<WorkerOutput>,
    ) {
        let Some((_, work)) = self.offers.remove(&grant) else {
            return;
        };
        if !self.started.insert(fence) {
            return;
        }
        let deadline = sent_local + self.params.lease_ttl_ms;
        let run = (work.duration_ms as f64 * self.params.slowness).round() as u64;
        let a = Attempt {
            fence,
            work,
            deadline,
            reported: false,
        };
        out.push(WorkerOutput::Belief(
            fence.task,
            Some((fence, self.trusted_until(&a))),
        ));
        self.attempts.insert(fence.task, a);
        out.push(WorkerOutput::Timer(run, WorkerTimer::WorkDone(fence)));
        out.push(WorkerOutput::Timer(
            self.renew_every(),
            WorkerTimer::Renew(fence),
        ));
    }

    fn renewed(&mut self, fence: Fence, sent_local: Time, out: &mut Vec<WorkerOutput>) {
        if let Some(a) = self
            .attempts
            .get_mut(&fence.task)
            .filter(|a| a.fence == fence && !a.reported)
        {
            a.deadline = a.deadline.max(sent_local + self.params.lease_ttl_ms);
            let until = a.deadline.min(self.session_until);
            out.push(WorkerOutput::Belief(fence.task, Some((fence, until))));
        }
    }

    /// A lease is trusted until its own deadline or the session's, whichever is first.
    fn trusted_until(&self, a: &Attempt) -> Time {
        a.deadline.min(self.session_until)
    }

    fn extend_session(&mut self, until: Time, out: &mut Vec<WorkerOutput>) {
        if until <= self.session_until {
            return;
        }
        self.session_until = until;
        for a in self.attempts.values().filter(|a| !a.reported) {
            out.push(WorkerOutput::Belief(
                a.fence.task,
                Some((a.fence, self.trusted_until(a))),
            ));
        }
    }

    fn drop_attempt(&mut self, now: Time, fence: Fence, out: &mut Vec<WorkerOutput>) {
        if self
            .attempts
            .get(&fence.task)
            .is_some_and(|a| a.fence == fence)
        {
            let a = self.attempts.remove(&fence.task);
            if a.is_some_and(|a| !a.reported) {
                out.push(WorkerOutput::Belief(fence.task, None));
            }
            self.ask_for_work(now, out);
        }
    }

    pub fn on_effect(&mut self, now: Time, effect: &Effect, out: &mut Vec<WorkerOutput>) {
        match effect {
            Effect::GrantOffered {
                grant,
                task,
                payload,
                ..
            } => {
                if !self.registered || self.free() == 0 {
                    let release = WorkerCommand::ReleaseGrant { grant: *grant };
                    self.send(now, release, false, out);
                    return;
                }
                let offer = (*task, TaskWork::decode(payload));
                if self.accepting {
                    self.accept(now, *grant, offer, out);
                } else {
                    self.unaccepted.insert(*grant, offer);
                }
            }
            Effect::GrantWithdrawn { grant, .. } => {
                self.offers.remove(grant);
                self.unaccepted.remove(grant);
            }
            Effect::LeaseRevoked { fence, .. } => self.drop_attempt(now, *fence, out),
            Effect::WorkerLost { instance, .. } if *instance == self.instance() => {
                self.reincarnate(now, out);
            }
            Effect::WorkerReadmitted { .. } => self.ask_for_work(now, out),
            _ => {}
        }
    }

    fn accept(
        &mut self,
        now: Time,
        grant: GrantId,
        offer: (TaskId, TaskWork),
        out: &mut Vec<WorkerOutput>,
    ) {
        self.offers.insert(grant, offer);
        // Resent until answered, so a lost reply cannot hold the slot forever; the
        // engine answers a repeated accept consistently.
        self.send(now, WorkerCommand::AcceptGrant { grant }, true, out);
    }

    /// Accepts a grant held back while acceptance was off: the one for `task`, or the
    /// oldest. `None` if there is none.
    pub fn accept_held(
        &mut self,
        now: Time,
        task: Option<TaskId>,
        out: &mut Vec<WorkerOutput>,
    ) -> Option<GrantId> {
        let grant = self
            .unaccepted
            .iter()
            .find(|(_, (t, _))| task.is_none_or(|want| *t == want))
            .map(|(g, _)| *g)?;
        let offer = self.unaccepted.remove(&grant)?;
        self.accept(now, grant, offer, out);
        Some(grant)
    }

    /// The latest fence this process started on `task`.
    pub fn latest_fence(&self, task: TaskId) -> Option<Fence> {
        self.started.iter().rev().find(|f| f.task == task).copied()
    }
}
