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

/// What `Handle::apply` resolves to.
pub(crate) type Reply = Result<Option<Result<Accepted, Rejection>>, CoordinatorError>;
pub(crate) type ReplyTx = oneshot::Sender<Reply>;
/// A read-only query, answering its caller itself.
pub(crate) type ReadFn = Box<dyn FnOnce(&Engine) + Send>;

/// Inputs gathered for one group commit, and the reads waiting behind them.
#[derive(Default)]
pub(crate) struct Batch {
    inputs: Vec<(Input, Option<ReplyTx>)>,
    reads: Vec<ReadFn>,
}

impl Batch {
    pub fn push_input(&mut self, input: Input, reply: ReplyTx) {
        self.inputs.push((input, Some(reply)));
    }

    /// A timer tick: logged like any input, answered to nobody.
    pub fn push_tick(&mut self) {
        self.inputs.push((Input::Tick, None));
    }

    pub fn push_read(&mut self, read: ReadFn) {
        self.reads.push(read);
    }

    pub fn inputs(&self) -> usize {
        self.inputs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty() && self.reads.is_empty()
    }

    /// Answers every waiting input with `error()`; dropping the reads tells their
    /// callers the coordinator stopped serving.
    pub fn refuse(self, error: impl Fn() -> CoordinatorError) {
        for (_, reply) in self.inputs {
            if let Some(reply) = reply {
                let _ = reply.send(Err(error()));
            }
        }
    }

    /// Applies every input at the clock's time, never earlier than the engine's own
    /// clock, and encodes its entry before the input moves into the engine.
    pub fn apply(self, engine: &mut Engine, clock: &dyn Clock) -> Applied {
        let mut payloads = Vec::with_capacity(self.inputs.len());
        let mut applied = Vec::with_capacity(self.inputs.len());
        for (input, reply) in self.inputs {
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
                reply,
            });
        }
        Applied {
            payloads,
            inputs: applied,
            reads: self.reads,
        }
    }
}

struct AppliedInput {
    now: Time,
    tick: bool,
    accepting: Option<GrantId>,
    outputs: Outputs,
    reply: Option<ReplyTx>,
}

/// A batch applied to the engine whose entries are not yet known to be durable.
pub(crate) struct Applied {
    /// The encoded entries, in the order they were applied.
    pub payloads: Vec<Vec<u8>>,
    inputs: Vec<AppliedInput>,
    reads: Vec<ReadFn>,
}

impl Applied {
    /// The batch is durable: routes the effects, sends the replies and runs the reads.
    pub fn release(
        self,
        engine: &Engine,
        routes: &Routes,
        metrics: &mut Metrics,
        offers: &mut OpenOffers,
    ) {
        for input in self.inputs {
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
            if let Some(reply) = input.reply {
                // A caller that stopped waiting loses nothing: the input is durable.
                let _ = reply.send(Ok(input.outputs.reply));
            }
        }
        metrics.queued = engine.queued();
        for read in self.reads {
            read(engine);
        }
    }

    /// The batch is not durable: every waiter gets `error()` and nothing is released.
    pub fn fail(self, error: impl Fn() -> CoordinatorError) {
        for input in self.inputs {
            if let Some(reply) = input.reply {
                let _ = reply.send(Err(error()));
            }
        }
    }
}
