//! One group commit: inputs applied to the engine in arrival order, their entries
//! appended as one batch, and their replies and effects held back until that append
//! is durable. Reads queued with the batch run after it, so they never observe state
//! the log does not hold.

use crate::clock::Clock;
use crate::error::CoordinatorError;
use crate::metrics::{Metrics, OpenOffers};
use crate::routing::Routes;
use keel_engine::{Accepted, Engine, GrantId, Input, Outputs, Rejection, Time, WorkerCommand};
use keel_log::Entry;
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

    /// Applies every input at the clock's time, never earlier than the engine's own
    /// clock, and encodes its entry before the input moves into the engine.
    pub fn apply(self, engine: &mut Engine, clock: &dyn Clock) -> Applied {
        let mut payloads = Vec::with_capacity(self.inputs.len());
        let mut applied = Vec::with_capacity(self.inputs.len());
        for (input, waiter) in self.inputs {
            let now = clock.now_ms().max(engine.now());
            let accepting = match &input {
                Input::Worker {
                    command: WorkerCommand::AcceptGrant { grant },
                    ..
                } => Some(*grant),
                _ => None,
            };
            let tick = input == Input::Tick;
            let entry = Entry::new(now, input);
            payloads.push(entry.encode());
            let outputs = engine.apply(entry.now, entry.input);
            applied.push(AppliedInput {
                now,
                tick,
                accepting,
                outputs,
                waiter,
            });
        }
        Applied {
            payloads,
            inputs: applied,
            groups: self.groups,
            reads: self.reads,
        }
    }
}

struct AppliedInput {
    now: Time,
    tick: bool,
    accepting: Option<GrantId>,
    outputs: Outputs,
    waiter: Waiter,
}

/// A batch applied to the engine whose entries are not yet known to be durable.
pub(crate) struct Applied {
    /// The encoded entries, in the order they were applied.
    pub payloads: Vec<Vec<u8>>,
    inputs: Vec<AppliedInput>,
    groups: Vec<Group>,
    reads: Vec<ReadFn>,
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
            ..
        } = self;
        for input in inputs {
            metrics.inputs += 1;
            metrics.ticks += u64::from(input.tick);
            for effect in &input.outputs.effects {
                metrics.count_effect(effect);
                offers.see(input.now, effect);
            }
            if let (Some(grant), Some(Ok(accepted))) = (input.accepting, &input.outputs.reply) {
                if let Some(seconds) = offers.accepted(grant, input.now, accepted) {
                    metrics.claim_to_start_seconds.observe(seconds);
                }
            }
            if matches!(input.outputs.reply, Some(Err(_))) {
                metrics.rejections += 1;
            }
            metrics.effects_dropped += routes.deliver(input.outputs.effects).dropped;
            // A caller that stopped waiting loses nothing: the input is durable.
            match input.waiter {
                Waiter::Nobody => {}
                Waiter::One(reply) => {
                    let _ = reply.send(Ok(input.outputs.reply));
                }
                Waiter::Group(index) => groups[index].answers.push(input.outputs.reply),
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
