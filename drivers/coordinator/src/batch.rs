//! One group commit: inputs applied to the engine in arrival order, their entries
//! appended as one batch, and their replies and effects held back until that append
//! is durable. Reads queued with the batch run after it, so they never observe state
//! the log does not hold. Each input's panic is contained: the batch stops at it and
//! names it, and the engine task discards the engine.

use crate::clock::Clock;
use crate::coalesce::{Coalescer, Sender};
use crate::error::CoordinatorError;
use crate::metrics::{Metrics, OpenOffers};
use crate::poison::{apply_contained, Met, Poisoned};
use crate::routing::Routes;
use keel_engine::{Accepted, Engine, GrantId, Input, Outputs, Rejection, Time, WorkerCommand};
use keel_log::{Entry, Offset};
use tokio::sync::oneshot;

/// The engine's answer to one input (None for a tick).
pub type Answer = Option<Result<Accepted, Rejection>>;
/// What `Handle::apply` resolves to.
pub(crate) type Reply = Result<Answer, CoordinatorError>;
pub(crate) type ReplyTx = oneshot::Sender<Reply>;
/// What `Handle::apply_all` resolves to: one answer per input, in order.
pub(crate) type Replies = Result<Vec<Answer>, CoordinatorError>;
pub(crate) type RepliesTx = oneshot::Sender<Replies>;
/// A read-only query, answering its caller itself.
pub(crate) type ReadFn = Box<dyn FnOnce(&Engine) + Send>;

/// Who waits for an input's answer.
enum Waiter {
    Nobody,
    One(ReplyTx),
    /// The input at this index of `Batch::groups`, answered with the whole group.
    Group(usize),
}

/// Inputs sent together, answered together once all are durable.
struct Group {
    reply: RepliesTx,
    answers: Vec<Answer>,
}

/// Inputs gathered for one group commit, and the reads waiting behind them.
#[derive(Default)]
pub(crate) struct Batch {
    inputs: Vec<(Input, Waiter)>,
    groups: Vec<Group>,
    reads: Vec<ReadFn>,
}

impl Batch {
    pub fn push_input(&mut self, input: Input, reply: ReplyTx) {
        self.inputs.push((input, Waiter::One(reply)));
    }

    /// Inputs applied one after another and answered in one reply.
    pub fn push_group(&mut self, inputs: Vec<Input>, reply: RepliesTx) {
        let index = self.groups.len();
        self.groups.push(Group {
            reply,
            answers: Vec::with_capacity(inputs.len()),
        });
        self.inputs.extend(
            inputs
                .into_iter()
                .map(|input| (input, Waiter::Group(index))),
        );
    }

    /// A timer tick: logged like any input, answered to nobody.
    pub fn push_tick(&mut self) {
        self.inputs.push((Input::Tick, Waiter::Nobody));
    }

    pub fn push_read(&mut self, read: ReadFn) {
        self.reads.push(read);
    }

    pub fn inputs(&self) -> usize {
        self.inputs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty() && self.reads.is_empty() && self.groups.is_empty()
    }

    /// Answers every waiting input with `error()`; dropping the reads tells their
    /// callers the coordinator stopped serving.
    pub fn refuse(self, error: impl Fn() -> CoordinatorError) {
        let waiters = self.inputs.into_iter().map(|(_, waiter)| waiter);
        refuse(waiters, self.groups, error);
    }

    /// Answers every waiting input with `error()` and hands back the reads, which may
    /// still run: nothing of the batch reached the engine.
    pub fn refuse_inputs(self, error: impl Fn() -> CoordinatorError) -> Vec<ReadFn> {
        let waiters = self.inputs.into_iter().map(|(_, waiter)| waiter);
        refuse(waiters, self.groups, error);
        self.reads
    }

    /// Applies every input at the clock's time, never earlier than the engine's own
    /// clock, and encodes its entry before the input moves into the engine. A
    /// heartbeat the coalescer absorbs is answered without an entry. If an input panics
    /// the engine, the inputs after it are not applied and `Applied::poisoned` names it
    /// (at `first_offset` plus the entries before it); the engine must then be dropped.
    pub fn apply(
        self,
        engine: &mut Engine,
        clock: &dyn Clock,
        coalescer: &mut Coalescer,
        first_offset: Offset,
    ) -> Applied {
        let mut payloads = Vec::with_capacity(self.inputs.len());
        let mut applied = Vec::with_capacity(self.inputs.len());
        let mut poisoned = None;
        let mut absorbed = 0;
        for (input, waiter) in self.inputs {
            let now = clock.now_ms().max(engine.now());
            if poisoned.is_some() {
                applied.push(AppliedInput::unapplied(now, waiter));
                continue;
            }
            if coalescer.absorbs(&input, now) {
                absorbed += 1;
                let outputs = Outputs {
                    reply: Some(Ok(Accepted::Ok)),
                    effects: Vec::new(),
                };
                applied.push(AppliedInput::new(now, &input, Some(outputs), waiter));
                continue;
            }
            let entry = Entry::new(now, input);
            payloads.push(entry.encode());
            let mut input = AppliedInput::new(now, &entry.input, None, waiter);
            let sender = Sender::of(&entry.input);
            match apply_contained(engine, entry.now, entry.input) {
                Ok(outputs) => {
                    if let Some(sender) = &sender {
                        coalescer.applied(sender, now, &outputs.reply);
                    }
                    input.outputs = Some(outputs);
                }
                Err(message) => {
                    let offset = first_offset + payloads.len() as u64 - 1;
                    poisoned = Some(poisoned_at(offset, &payloads, message));
                }
            }
            applied.push(input);
        }
        Applied {
            payloads,
            inputs: applied,
            groups: self.groups,
            reads: self.reads,
            absorbed,
            poisoned,
        }
    }
}

/// Names the input whose entry is the last of `payloads`, which panicked the engine.
fn poisoned_at(offset: Offset, payloads: &[Vec<u8>], message: String) -> Poisoned {
    let last = payloads.last().map_or(&[][..], Vec::as_slice);
    // The entry was encoded a moment ago, so it decodes.
    let input = Entry::decode(0, offset, last).map_or(Input::Tick, |entry| entry.input);
    Poisoned::new(offset, &input, message, Met::Serving { recorded: false })
}

struct AppliedInput {
    now: Time,
    tick: bool,
    accepting: Option<GrantId>,
    /// None for an input the engine did not get through (it panicked, on this one or
    /// one before).
    outputs: Option<Outputs>,
    waiter: Waiter,
}

impl AppliedInput {
    fn new(now: Time, input: &Input, outputs: Option<Outputs>, waiter: Waiter) -> AppliedInput {
        AppliedInput {
            now,
            tick: *input == Input::Tick,
            accepting: match input {
                Input::Worker {
                    command: WorkerCommand::AcceptGrant { grant },
                    ..
                } => Some(*grant),
                _ => None,
            },
            outputs,
            waiter,
        }
    }

    fn unapplied(now: Time, waiter: Waiter) -> AppliedInput {
        AppliedInput {
            now,
            tick: false,
            accepting: None,
            outputs: None,
            waiter,
        }
    }
}

/// A batch applied to the engine whose entries are not yet known to be durable.
pub(crate) struct Applied {
    /// The encoded entries, in the order they were applied; absorbed heartbeats have
    /// none.
    pub payloads: Vec<Vec<u8>>,
    inputs: Vec<AppliedInput>,
    groups: Vec<Group>,
    reads: Vec<ReadFn>,
    /// Heartbeats answered without an entry.
    pub absorbed: u64,
    /// The input that panicked the engine, if one did: its entry is the last payload.
    pub poisoned: Option<Poisoned>,
}

impl Applied {
    /// Whether reads wait on this batch: they must see exactly its state, so no later
    /// batch may be applied before it is released.
    pub fn has_reads(&self) -> bool {
        !self.reads.is_empty()
    }

    /// The batch is durable: routes the effects, sends the replies and runs the reads.
    pub fn release(
        self,
        engine: &Engine,
        routes: &Routes,
        metrics: &mut Metrics,
        offers: &mut OpenOffers,
    ) {
        let Applied {
            inputs,
            mut groups,
            reads,
            absorbed,
            ..
        } = self;
        metrics.heartbeats_absorbed += absorbed;
        for input in inputs {
            let Some(outputs) = input.outputs else {
                continue;
            };
            metrics.inputs += 1;
            metrics.ticks += u64::from(input.tick);
            for effect in &outputs.effects {
                metrics.count_effect(effect);
                offers.see(input.now, effect);
            }
            if let (Some(grant), Some(Ok(accepted))) = (input.accepting, &outputs.reply) {
                if let Some(seconds) = offers.accepted(grant, input.now, accepted) {
                    metrics.claim_to_start_seconds.observe(seconds);
                }
            }
            if matches!(outputs.reply, Some(Err(_))) {
                metrics.rejections += 1;
            }
            let delivery = routes.deliver(outputs.effects);
            metrics.effects_dropped += delivery.dropped;
            metrics.sessions_dropped += delivery.sessions_dropped;
            // A caller that stopped waiting loses nothing: the input is durable.
            match input.waiter {
                Waiter::Nobody => {}
                Waiter::One(reply) => {
                    let _ = reply.send(Ok(outputs.reply));
                }
                Waiter::Group(index) => groups[index].answers.push(outputs.reply),
            }
        }
        for group in groups {
            let _ = group.reply.send(Ok(group.answers));
        }
        metrics.queued = engine.queued();
        for read in reads {
            read(engine);
        }
    }

    /// The batch is not durable: every waiter gets `error()` and nothing is released.
    pub fn fail(self, error: impl Fn() -> CoordinatorError) {
        let waiters = self.inputs.into_iter().map(|input| input.waiter);
        refuse(waiters, self.groups, error);
    }
}

/// Answers every waiter, and every group once, with `error()`.
fn refuse(
    waiters: impl Iterator<Item = Waiter>,
    groups: Vec<Group>,
    error: impl Fn() -> CoordinatorError,
) {
    for waiter in waiters {
        if let Waiter::One(reply) = waiter {
            let _ = reply.send(Err(error()));
        }
    }
    for group in groups {
        let _ = group.reply.send(Err(error()));
    }
}
