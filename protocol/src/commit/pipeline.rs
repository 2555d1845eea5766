//! The pipeline's state and rules (see the module's documentation).

use super::batch::{
    AppendResult, Applied, Batch, Fault, Refusal, Refused, Released, Reply, Request,
};
use super::coalesce::{Coalescer, Sender};
use super::{Apply, Outcome};
use keel_engine::{Accepted, Input, Outputs};
use std::collections::VecDeque;

/// What the caller must do next.
pub enum Action<W, R, E> {
    /// Append the batch's entries (`Batch::take_entries`) at `Batch::first`, then hand
    /// the batch back to [`Pipeline::append_done`]. At most one is under way.
    Append(Batch<W, R, E>),
    /// Durable: send these replies and effects, then run these reads.
    Release(Released<W, R>),
    /// Answer these requests with this refusal.
    Refuse(Refused<W, R>),
    /// An append failed and the engine holds inputs the log may not: rebuild it from
    /// the log, then call [`Pipeline::rebuilt`]. Requests are refused meanwhile.
    Rebuild(Fault),
    /// Rebuilt: call [`Pipeline::unpause`] after `ms`. Inputs are refused until then
    /// (reads are served), so a log that can be read but not written (a full disk) is
    /// probed with one batch per pause instead of costing a rebuild per batch.
    Pause {
        /// What failed.
        fault: Fault,
        /// How long to pause: 100 ms after the first failure, doubling with every
        /// failure in a row up to 5 s, and back to 100 ms once an append is durable.
        ms: u64,
    },
    /// The engine panicked on the batch's last entry: discard the engine. The machine
    /// has stopped; the batch is the caller's to record and refuse.
    Panicked(Batch<W, R, E>),
}

/// How a pipeline batches.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// The most inputs in one batch (a group is never split, so one may exceed it).
    pub max_batch: usize,
    /// The engine's liveness timeout, which sets the heartbeat coalescing window.
    pub liveness_timeout_ms: u64,
}

/// The first pause after a rebuild.
pub const PAUSE_MIN_MS: u64 = 100;
/// The longest pause after a rebuild.
pub const PAUSE_MAX_MS: u64 = 5_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Serving,
    Rebuilding(Fault),
    Paused(Fault),
    Stopped(Refusal),
}

/// The append under way.
struct Flight {
    id: u64,
    has_reads: bool,
}

/// The commit pipeline: applies requests to the engine in batches, appends one batch
/// at a time, and releases a batch's answers only once the log holds it.
pub struct Pipeline<W, R, E> {
    settings: Settings,
    queue: VecDeque<Request<W, R>>,
    queued_inputs: usize,
    tick_due: bool,
    waiting: Option<Batch<W, R, E>>,
    flight: Option<Flight>,
    coalescer: Coalescer,
    /// Every entry before this offset is durable.
    durable_end: u64,
    /// Where the next applied entry goes.
    applied_end: u64,
    next_id: u64,
    state: State,
    /// The pause after the next rebuild.
    pause_ms: u64,
    hold_appends: bool,
    hold_applies: bool,
    actions: VecDeque<Action<W, R, E>>,
}

impl<W, R, E> Pipeline<W, R, E> {
    /// A pipeline over an engine whose state is exactly the log up to `end`.
    pub fn new(settings: Settings, end: u64) -> Self {
        Pipeline {
            settings,
            queue: VecDeque::new(),
            queued_inputs: 0,
            tick_due: false,
            waiting: None,
            flight: None,
            coalescer: Coalescer::new(settings.liveness_timeout_ms),
            durable_end: end,
            applied_end: end,
            next_id: 1,
            state: State::Serving,
            pause_ms: PAUSE_MIN_MS,
            hold_appends: false,
            hold_applies: false,
            actions: VecDeque::new(),
        }
    }

    /// The next thing to do, in the order the machine decided them.
    pub fn next_action(&mut self) -> Option<Action<W, R, E>> {
        self.actions.pop_front()
    }

    /// A request arrived. Refused at once unless serving (reads are served while
    /// paused).
    pub fn push(&mut self, request: Request<W, R>) {
        let read = matches!(request, Request::Read(_));
        match self.state {
            State::Serving => {
                self.queued_inputs += request.inputs();
                self.queue.push_back(request);
            }
            State::Paused(_) if read => {
                self.queued_inputs += request.inputs();
                self.queue.push_back(request);
            }
            State::Paused(fault) => self.refuse([request], Refusal::Paused(fault)),
            State::Rebuilding(fault) => self.refuse([request], Refusal::Unavailable(fault)),
            State::Stopped(refusal) => self.refuse([request], refusal),
        }
    }

    /// The engine's timer is due: the next batch starts with a tick.
    pub fn tick(&mut self) {
        if self.state == State::Serving {
            self.tick_due = true;
        }
    }

    /// Whether a batch being gathered has room for more inputs.
    pub fn has_room(&self) -> bool {
        self.queued_inputs < self.settings.max_batch
    }

    /// Whether requests already queued (or a due tick) wait to be applied.
    pub fn has_work(&self) -> bool {
        self.tick_due || !self.queue.is_empty()
    }

    /// Whether another batch may be applied now: not while one already waits, not while
    /// the batch being appended has reads (they must see exactly its state), and not
    /// while applies are held.
    pub fn taking(&self) -> bool {
        matches!(self.state, State::Serving | State::Paused(_))
            && self.waiting.is_none()
            && !self.flight.as_ref().is_some_and(|f| f.has_reads)
            && !self.hold_applies
    }

    /// Nothing applied is waiting for the log.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_none() && self.flight.is_none()
    }

    /// An append was handed to the log and has not been answered.
    pub fn append_in_flight(&self) -> bool {
        self.flight.is_some()
    }

    /// Every entry before this offset is durable.
    pub fn durable_end(&self) -> u64 {
        self.durable_end
    }

    /// Holds appends (a lease renewal is under way: it must not wait behind a write)
    /// and applies (a snapshot must capture only durable state).
    pub fn hold(&mut self, appends: bool, applies: bool) {
        self.hold_appends = appends;
        self.hold_applies = applies;
        self.advance();
    }

    /// Takes every queued request out without applying it (the caller refuses them).
    pub fn take_queued(&mut self) -> Vec<Request<W, R>> {
        self.queued_inputs = 0;
        self.tick_due = false;
        self.queue.drain(..).collect()
    }

    /// Applies batches while the pipeline takes them and requests wait.
    pub fn apply(&mut self, engine: &mut impl Apply<Entry = E>) {
        while self.taking() && self.has_work() {
            let batch = self.gather(engine);
            if batch.panicked {
                self.state = State::Stopped(Refusal::Stopped);
                let queued = self.take_queued();
                self.refuse(queued, Refusal::Stopped);
                self.actions.push_back(Action::Panicked(batch));
                return;
            }
            self.waiting = Some(batch);
            self.advance();
        }
    }

    /// The append of `batch` ended.
    pub fn append_done(&mut self, batch: Batch<W, R, E>, result: AppendResult) {
        if self.flight.as_ref().map(|f| f.id) != Some(batch.id) {
            // Not the append under way: the caller's bookkeeping went wrong. Its
            // waiters learn nothing was released.
            return self.refuse_batch(batch, Refusal::Stopped);
        }
        self.flight = None;
        match result {
            AppendResult::Durable => {
                self.durable_end = batch.first + batch.entry_count;
                self.pause_ms = PAUSE_MIN_MS;
                self.actions
                    .push_back(Action::Release(batch.into_released()));
                self.advance();
            }
            AppendResult::Fenced { current } => {
                let refusal = Refusal::NotLeader {
                    fenced_by: Some(current),
                };
                self.refuse_batch(batch, refusal);
                self.stop(refusal);
            }
            AppendResult::Failed(fault) => {
                self.refuse_batch(batch, Refusal::NotDurable(fault));
                if self.state != State::Serving {
                    return;
                }
                if let Some(waiting) = self.waiting.take() {
                    self.refuse_batch(waiting, Refusal::Unrecorded(fault));
                }
                let queued = self.take_queued();
                self.refuse(queued, Refusal::Unavailable(fault));
                self.state = State::Rebuilding(fault);
                self.actions.push_back(Action::Rebuild(fault));
            }
        }
    }

    /// The engine was rebuilt from the log, which ends at `end`; serving resumes after
    /// a pause ([`Action::Pause`]).
    pub fn rebuilt(&mut self, end: u64) {
        if let State::Rebuilding(fault) = self.state {
            self.state = State::Paused(fault);
            let ms = self.pause_ms;
            self.pause_ms = ms.saturating_mul(2).min(PAUSE_MAX_MS);
            self.actions.push_back(Action::Pause { fault, ms });
        }
        self.durable_end = end;
        self.applied_end = end;
        self.coalescer = Coalescer::new(self.settings.liveness_timeout_ms);
    }

    /// The pause after a rebuild is over: inputs are taken again.
    pub fn unpause(&mut self) {
        if let State::Paused(_) = self.state {
            self.state = State::Serving;
        }
    }

    /// Whether inputs are refused for a pause after a rebuild.
    pub fn is_paused(&self) -> bool {
        matches!(self.state, State::Paused(_))
    }

    /// Serving stops (leadership lost, or shutting down): what has not gone to the log
    /// is refused with `refusal`; the append under way is answered by how it ends.
    pub fn stop(&mut self, refusal: Refusal) {
        self.state = State::Stopped(refusal);
        if let Some(waiting) = self.waiting.take() {
            self.refuse_batch(waiting, refusal);
        }
        let queued = self.take_queued();
        self.refuse(queued, refusal);
    }

    /// Starts appending the waiting batch once nothing is under way and appends are not
    /// held. A batch without entries (only reads and absorbed heartbeats) needs no
    /// append: it is durable once the one before it is.
    fn advance(&mut self) {
        if self.flight.is_some() || self.hold_appends {
            return;
        }
        let Some(batch) = self.waiting.take() else {
            return;
        };
        if batch.is_empty() {
            self.actions
                .push_back(Action::Release(batch.into_released()));
            return;
        }
        self.flight = Some(Flight {
            id: batch.id,
            has_reads: batch.has_reads(),
        });
        self.actions.push_back(Action::Append(batch));
    }

    /// Builds the next batch from the queue: a due tick first, then requests in
    /// arrival order until the batch holds `max_batch` inputs.
    fn gather(&mut self, engine: &mut impl Apply<Entry = E>) -> Batch<W, R, E> {
        let mut batch = Batch {
            id: self.next_id,
            first: self.applied_end,
            entries: Vec::new(),
            entry_count: 0,
            replies: Vec::new(),
            reads: Vec::new(),
            absorbed: 0,
            panicked: false,
        };
        self.next_id += 1;
        let mut inputs = 0;
        if std::mem::take(&mut self.tick_due) {
            let applied = self.apply_one(engine, &mut batch, Input::Tick);
            batch.replies.push(Reply::Tick(applied));
            inputs += 1;
        }
        while inputs < self.settings.max_batch {
            let Some(request) = self.queue.pop_front() else {
                break;
            };
            inputs += request.inputs();
            self.queued_inputs -= request.inputs();
            let reply = match request {
                Request::Read(read) => {
                    batch.reads.push(read);
                    continue;
                }
                Request::Input { input, waiter } => {
                    Reply::One(waiter, self.apply_one(engine, &mut batch, input))
                }
                Request::Group { inputs, waiter } => {
                    let answers = inputs
                        .into_iter()
                        .map(|input| self.apply_one(engine, &mut batch, input))
                        .collect();
                    Reply::Group(waiter, answers)
                }
            };
            batch.replies.push(reply);
        }
        batch
    }

    /// Applies one input into `batch`, unless the engine already panicked on an input
    /// before it or the input is a heartbeat the coalescer absorbs.
    fn apply_one(
        &mut self,
        engine: &mut impl Apply<Entry = E>,
        batch: &mut Batch<W, R, E>,
        input: Input,
    ) -> Applied {
        let now = engine.now();
        let mut applied = Applied::new(now, self.applied_end, &input);
        if batch.panicked {
            return applied;
        }
        if self.coalescer.absorbs(&input, now) {
            batch.absorbed += 1;
            applied.absorbed = true;
            applied.outputs = Some(Outputs {
                reply: Some(Ok(Accepted::Ok)),
                effects: Vec::new(),
            });
            return applied;
        }
        let sender = Sender::of(&input);
        let offset = self.applied_end;
        self.applied_end += 1;
        batch.entry_count += 1;
        applied.position = self.applied_end;
        match engine.apply(now, offset, input) {
            Outcome::Applied(outputs, entry) => {
                if let Some(sender) = &sender {
                    self.coalescer.applied(sender, now, &outputs.reply);
                }
                batch.entries.push(entry);
                applied.outputs = Some(outputs);
            }
            Outcome::Panicked(entry) => {
                batch.entries.push(entry);
                batch.panicked = true;
            }
        }
        applied
    }

    fn refuse_batch(&mut self, batch: Batch<W, R, E>, refusal: Refusal) {
        let (waiters, reads) = batch.into_waiters();
        self.push_refusal(waiters, reads, refusal);
    }

    fn refuse(&mut self, requests: impl IntoIterator<Item = Request<W, R>>, refusal: Refusal) {
        let (mut waiters, mut reads) = (Vec::new(), Vec::new());
        for request in requests {
            match request {
                Request::Input { waiter, .. } | Request::Group { waiter, .. } => {
                    waiters.push(waiter)
                }
                Request::Read(read) => reads.push(read),
            }
        }
        self.push_refusal(waiters, reads, refusal);
    }

    fn push_refusal(&mut self, waiters: Vec<W>, reads: Vec<R>, refusal: Refusal) {
        if waiters.is_empty() && reads.is_empty() {
            return;
        }
        self.actions.push_back(Action::Refuse(Refused {
            waiters,
            reads,
            refusal,
        }));
    }
}
