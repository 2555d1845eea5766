//! A simulated worker process: the production worker machine (`keel_protocol::worker`)
//! on the process's own drifting clock, with a model of its handlers. The machine makes
//! every protocol decision (registering, credits, accepting, renewing, trusting a
//! lease, resending outcomes, reconnecting); this shell only runs the handlers (how long
//! a task takes, whether it fails), keeps the machine's timer, and turns its commands
//! into engine inputs. The "connection" is the simulated network itself: a connection
//! the machine asks for is made at once, and one it gives up on simply ends.
//!
//! A scenario script can hold grants back, stop renewals from leaving, and send
//! commands of its own beside the machine's (`script.rs`).
//!
//! The machine has no usage reports or stream frames; a task whose payload asks for
//! them (`usage.rs`, `TaskWork::frames`) sends them beside the machine's commands,
//! under request 0, whose answers it does not read. Frame `k` of an attempt goes out
//! alone at its due time, as position `k - 1`; just before the attempt ends all of its
//! frames go again from position 0, as an SDK resends what it does not know was
//! stored, so the engine must append a lost frame then and a delivered one only once.

use crate::wire;
use crate::work::{frame_of, TaskWork};
use keel_engine::{
    Accepted, Effect, Fence, GrantId, InstanceId, Payload, Rejection, TaskId, Time, WorkerCommand,
    WorkerId,
};
use keel_protocol::worker::{
    self as machine, Command, Event, Offer, Output, Registered, WorkerMachine,
};
use std::collections::BTreeMap;

/// Bits of a request id below the process number: a reply to an earlier process of
/// the same worker never matches a request of the current one.
const PROCESS_SHIFT: u32 = 40;

/// A worker's own timers, armed in local milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WorkerTimer {
    /// The machine's next timeout; only the latest armed one counts.
    Machine(u64),
    /// A handler's work is done.
    WorkDone(Fence),
    /// A running handler's usage report number `.1` (from 1) is due.
    Report(Fence, u32),
    /// A running handler's frame number `.1` (from 1) is due.
    Frame(Fence, u8),
    /// A running consumer reads its streaming edges.
    Read(Fence),
}

/// What the worker asks the world to do.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum WorkerOutput {
    /// Send a command under this request id.
    Send(u64, WorkerCommand),
    /// Arm a timer this many local milliseconds from now.
    Timer(u64, WorkerTimer),
    /// The worker now believes it holds `fence` until this local time, or no longer
    /// believes it holds a lease on the task.
    Belief(TaskId, Option<(Fence, Time)>),
    /// Read what the edges from these producers owe the running attempt `fence`, and
    /// acknowledge it, as an SDK consumer's `task.stream` and `task.ack` do.
    Read(Fence, Vec<String>),
}

#[derive(Clone, Debug)]
pub(crate) struct WorkerParams {
    pub id: WorkerId,
    pub capabilities: Vec<String>,
    pub max_concurrency: u32,
    pub slowness: f64,
    pub fail_rate: f64,
    pub lease_ttl_ms: u64,
    pub liveness_timeout_ms: u64,
    /// How long a command may go unanswered before the machine reconnects.
    pub answer_timeout_ms: u64,
    /// Position in the scenario, from 1; the first process registers as
    /// `ordinal * 1000 + 1`, and every later instance is larger.
    pub ordinal: u64,
}

impl WorkerParams {
    /// The instance id of the worker's `incarnation`-th registration.
    pub(crate) fn instance(&self, incarnation: u64) -> InstanceId {
        InstanceId::new(self.ordinal * 1_000 + incarnation)
    }

    fn machine(&self, instance: InstanceId, process: u64) -> machine::Config {
        machine::Config {
            capabilities: self.capabilities.clone(),
            lanes: Vec::new(),
            concurrency: self.max_concurrency,
            instance,
            backoff_min_ms: 100,
            backoff_max_ms: 5_000,
            jitter_seed: self.ordinal.wrapping_mul(1_000_003).wrapping_add(process),
            answer_timeout_ms: self.answer_timeout_ms,
            drain_timeout_ms: 60_000,
            frame_overhead_bytes: 0,
            max_error_bytes: usize::MAX,
            max_progress_bytes: usize::MAX,
        }
    }
}

/// Whether an attempt fails on this worker; decided by the world's RNG.
pub(crate) type FailDraw<'a> = &'a mut dyn FnMut(f64) -> bool;

pub(crate) struct SimWorker {
    pub params: WorkerParams,
    machine: WorkerMachine,
    /// Counts process starts; timers and replies of an earlier process are ignored.
    pub process: u64,
    /// The machine's timer armed last (its number and local due time); older ones
    /// that fire are ignored.
    armed: Option<(u64, Time)>,
    timers: u64,
    /// Handlers running, by attempt, with the work each does.
    handlers: BTreeMap<Fence, TaskWork>,
    /// Grants a script holds back from the machine.
    held: BTreeMap<GrantId, Offer>,
    /// The latest lease this process started on each task (scripts report under it).
    latest: BTreeMap<TaskId, Fence>,
    /// Hand grants to the machine as they are offered (a script can turn this off).
    pub accepting: bool,
    /// Let renewals leave (a script can turn this off).
    pub renewing: bool,
}

impl SimWorker {
    pub(crate) fn new(params: WorkerParams) -> SimWorker {
        let machine = WorkerMachine::new(params.machine(params.instance(0), 0));
        SimWorker {
            params,
            machine,
            process: 0,
            armed: None,
            timers: 0,
            handlers: BTreeMap::new(),
            held: BTreeMap::new(),
            latest: BTreeMap::new(),
            accepting: true,
            renewing: true,
        }
    }

    pub(crate) fn instance(&self) -> InstanceId {
        self.machine.instance()
    }

    /// Starts (or restarts) from nothing: a new process registering an instance past
    /// every earlier one of this worker.
    pub(crate) fn boot(&mut self, now: Time, out: &mut Vec<WorkerOutput>) {
        self.forget(out);
        self.process += 1;
        let first = self.params.instance(1).get();
        let instance = InstanceId::new(first.max(self.machine.instance().get().saturating_add(1)));
        self.machine = WorkerMachine::new(self.params.machine(instance, self.process));
        let mut outputs = Vec::new();
        self.machine.start(&mut outputs);
        self.carry_out(now, outputs, out);
    }

    /// The process is gone; whatever it believed ends with it.
    pub(crate) fn forget(&mut self, out: &mut Vec<WorkerOutput>) {
        for fence in std::mem::take(&mut self.handlers).into_keys() {
            out.push(WorkerOutput::Belief(fence.task, None));
        }
        self.held.clear();
        self.latest.clear();
        self.armed = None;
        self.accepting = true;
        self.renewing = true;
    }

    /// Free slots, as the machine counts them.
    pub(crate) fn free(&self) -> u32 {
        self.machine.credits()
    }

    /// Gives this instance up and registers the next one, as the machine does when
    /// told its instance was lost.
    pub(crate) fn reincarnate(&mut self, now: Time, out: &mut Vec<WorkerOutput>) {
        let mut outputs = Vec::new();
        self.machine.new_instance(now, &mut outputs);
        self.carry_out(now, outputs, out);
    }

    pub(crate) fn on_timer(
        &mut self,
        now: Time,
        timer: WorkerTimer,
        fails: FailDraw,
        out: &mut Vec<WorkerOutput>,
    ) {
        let mut outputs = Vec::new();
        match timer {
            WorkerTimer::Machine(n) => {
                if self.armed.is_none_or(|(armed, _)| armed != n) {
                    return; // superseded by an earlier timeout
                }
                self.armed = None;
                self.machine.on_timer(now, &mut outputs);
            }
            WorkerTimer::Report(fence, k) => {
                if let Some(usage) = self.handlers.get(&fence).and_then(|w| w.usage.as_ref()) {
                    out.push(WorkerOutput::Send(0, usage.report(fence, k)));
                }
            }
            WorkerTimer::Frame(fence, k) => {
                if self.handlers.contains_key(&fence) {
                    out.push(WorkerOutput::Send(0, emit(fence, k..=k)));
                }
            }
            WorkerTimer::Read(fence) => {
                if let Some(work) = self.handlers.get(&fence) {
                    out.push(WorkerOutput::Read(fence, work.streams.clone()));
                }
            }
            WorkerTimer::WorkDone(fence) => {
                let Some(work) = self.handlers.remove(&fence) else {
                    return; // cancelled meanwhile
                };
                if work.frames > 0 {
                    out.push(WorkerOutput::Send(0, emit(fence, 1..=work.frames)));
                }
                if let Some(usage) = work.usage.as_ref().filter(|u| u.resend) {
                    for k in 1..=usage.reports {
                        out.push(WorkerOutput::Send(0, usage.report(fence, k)));
                    }
                }
                let outcome = self.outcome(fence, work, fails);
                self.machine
                    .handler_finished(now, fence, Some(outcome), &mut outputs);
            }
        }
        self.carry_out(now, outputs, out);
    }

    /// How an attempt ends: a run still waiting for its signal suspends, poisoned
    /// attempts fail, others fail at the worker's rate.
    fn outcome(&self, fence: Fence, work: TaskWork, fails: FailDraw) -> machine::Outcome {
        if work.waits {
            return machine::Outcome::Suspend {
                waitpoint: crate::work::WAITPOINT.into(),
                timeout_ms: None,
                on_timeout: keel_engine::SuspendTimeout::Fail,
            };
        }
        let poisoned = fence.attempt <= u32::from(work.fail_attempts);
        if poisoned || fails(self.params.fail_rate) {
            let error = if poisoned {
                "task failed"
            } else {
                "worker fault"
            };
            machine::Outcome::Fail {
                error: error.into(),
                permanent: false,
            }
        } else {
            machine::Outcome::Complete(crate::work::output_of(fence))
        }
    }

    pub(crate) fn on_reply(
        &mut self,
        now: Time,
        request: u64,
        reply: &Result<Accepted, Rejection>,
        out: &mut Vec<WorkerOutput>,
    ) {
        if request >> PROCESS_SHIFT != self.process {
            return; // a reply to an earlier process, or to a script's own command
        }
        let cadence = Registered {
            lease_ttl_ms: self.params.lease_ttl_ms,
            liveness_timeout_ms: self.params.liveness_timeout_ms,
            frame_bytes: None,
        };
        let seq = request & ((1 << PROCESS_SHIFT) - 1);
        let answer = wire::answer(reply, cadence);
        let mut outputs = Vec::new();
        self.machine
            .on_event(now, Event::Reply { seq, answer }, &mut outputs);
        self.carry_out(now, outputs, out);
    }

    pub(crate) fn on_effect(&mut self, now: Time, effect: &Effect, out: &mut Vec<WorkerOutput>) {
        let Some(event) = wire::event(effect) else {
            return;
        };
        match event {
            Event::GrantOffered(offer) if !self.accepting => {
                self.held.insert(offer.grant, offer);
            }
            Event::GrantWithdrawn { grant } if self.held.remove(&grant).is_some() => {}
            event => {
                let mut outputs = Vec::new();
                self.machine.on_event(now, event, &mut outputs);
                self.carry_out(now, outputs, out);
            }
        }
    }

    /// Hands a grant held back to the machine: the one for `task`, or the oldest.
    /// `None` if there is none.
    pub(crate) fn accept_held(
        &mut self,
        now: Time,
        task: Option<TaskId>,
        out: &mut Vec<WorkerOutput>,
    ) -> Option<GrantId> {
        let grant = self
            .held
            .values()
            .find(|o| task.is_none_or(|want| o.task == want))
            .map(|o| o.grant)?;
        let offer = self.held.remove(&grant)?;
        let mut outputs = Vec::new();
        self.machine
            .on_event(now, Event::GrantOffered(offer), &mut outputs);
        self.carry_out(now, outputs, out);
        Some(grant)
    }

    /// The latest fence this process started on `task`.
    pub(crate) fn latest_fence(&self, task: TaskId) -> Option<Fence> {
        self.latest.get(&task).copied()
    }

    /// Carries out what the machine asked for, then arms its next timeout.
    fn carry_out(&mut self, now: Time, outputs: Vec<Output>, out: &mut Vec<WorkerOutput>) {
        let mut queue = outputs;
        while !queue.is_empty() {
            let mut more = Vec::new();
            for output in queue {
                self.output(now, output, &mut more, out);
            }
            queue = more;
        }
        self.arm(now, out);
    }

    fn output(
        &mut self,
        now: Time,
        output: Output,
        more: &mut Vec<Output>,
        out: &mut Vec<WorkerOutput>,
    ) {
        match output {
            // The simulated network needs no handshake: the connection is there.
            Output::Connect => self.machine.connected(now, more),
            Output::Disconnect | Output::Stopped(_) | Output::OutcomeRefused { .. } => {}
            Output::Send { seq, command } => {
                if !self.renewing && matches!(command, Command::Renew { .. }) {
                    return;
                }
                if let Some(command) = wire::command(command) {
                    out.push(WorkerOutput::Send(
                        self.process << PROCESS_SHIFT | seq,
                        command,
                    ));
                }
            }
            Output::Start(a) => {
                let mut work = TaskWork::decode_bytes(&a.payload);
                // A run a signal resumed has what it waited for.
                work.waits &= a.signal.is_none();
                let run = (work.duration_ms as f64 * self.params.slowness).round() as u64;
                if let Some(usage) = &work.usage {
                    for k in 1..=usage.reports {
                        let due = usage.due_ms(k, run);
                        out.push(WorkerOutput::Timer(due, WorkerTimer::Report(a.fence, k)));
                    }
                }
                for k in 1..=work.frames {
                    let due = run.saturating_mul(u64::from(k)) / (u64::from(work.frames) + 1);
                    out.push(WorkerOutput::Timer(due, WorkerTimer::Frame(a.fence, k)));
                }
                work.streams = a.streams.clone();
                if !work.streams.is_empty() {
                    for k in 1..=READS {
                        let due = run.saturating_mul(k) / (READS + 1);
                        out.push(WorkerOutput::Timer(due, WorkerTimer::Read(a.fence)));
                    }
                }
                self.handlers.insert(a.fence, work);
                self.latest.insert(a.fence.task, a.fence);
                out.push(WorkerOutput::Timer(run, WorkerTimer::WorkDone(a.fence)));
            }
            Output::Cancel(fence) => {
                self.handlers.remove(&fence);
            }
            Output::Trust { task, until } => out.push(WorkerOutput::Belief(task, until)),
        }
    }

    /// Arms a timer for the machine's next timeout, unless one armed already comes
    /// no later.
    fn arm(&mut self, now: Time, out: &mut Vec<WorkerOutput>) {
        let Some(due) = self.machine.next_timeout() else {
            return;
        };
        if self.armed.is_some_and(|(_, at)| at <= due) {
            return;
        }
        self.timers += 1;
        self.armed = Some((self.timers, due));
        let delay = due.saturating_sub(now).max(1);
        out.push(WorkerOutput::Timer(
            delay,
            WorkerTimer::Machine(self.timers),
        ));
    }
}

/// How often a consumer reads its edges while it runs, at evenly spread times.
const READS: u64 = 4;

/// An emit of frames `ks` (numbered from 1) of the attempt `fence`, from the first's
/// position.
fn emit(fence: Fence, ks: std::ops::RangeInclusive<u8>) -> WorkerCommand {
    WorkerCommand::Emit {
        fence,
        from: u64::from(ks.start().saturating_sub(1)),
        frames: ks.map(|k| Payload::from(frame_of(fence, k))).collect(),
    }
}
