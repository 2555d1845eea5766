//! The coordinator's side of a group commit (the rules are
//! [`keel_protocol::commit`]'s): who waits for an input's answer, how the engine
//! applies an input (its entry encoded first, its panic contained), and what a durable
//! batch releases (effects routed, replies sent, reads run).

use crate::clock::Clock;
use crate::error::CoordinatorError;
use crate::metrics::{Metrics, OpenOffers};
use crate::poison::{apply_contained, Met, Poisoned};
use crate::routing::Routes;
use keel_engine::{Engine, Input, Time};
use keel_log::Entry;
use keel_protocol::commit::{self, Apply, Outcome, Released, Reply as Answered};
use tokio::sync::oneshot;

pub use keel_protocol::commit::Answer;
/// What `Handle::apply` resolves to.
pub(crate) type Reply = Result<Answer, CoordinatorError>;
pub(crate) type ReplyTx = oneshot::Sender<Reply>;
/// What `Handle::apply_all` resolves to: one answer per input, in order.
pub(crate) type Replies = Result<Vec<Answer>, CoordinatorError>;
pub(crate) type RepliesTx = oneshot::Sender<Replies>;
/// A read-only query, answering its caller itself.
pub(crate) type ReadFn = Box<dyn FnOnce(&Engine) + Send>;

/// Who waits for a request's answer.
pub(crate) enum Waiter {
    One(ReplyTx),
    /// Inputs sent together, answered together once all are durable.
    Group(RepliesTx),
}

impl Waiter {
    /// Sends the answers of a durable request.
    fn answer(self, answers: Answers) {
        // A caller that stopped waiting loses nothing: the input is durable.
        match (self, answers) {
            (Waiter::One(reply), Answers::One(answer)) => {
                let _ = reply.send(Ok(answer));
            }
            (Waiter::Group(reply), Answers::All(answers)) => {
                let _ = reply.send(Ok(answers));
            }
            // A request is pushed with the waiter of its kind, so these never meet.
            (Waiter::One(reply), Answers::All(mut answers)) => {
                let _ = reply.send(Ok(answers.pop().flatten()));
            }
            (Waiter::Group(reply), Answers::One(answer)) => {
                let _ = reply.send(Ok(vec![answer]));
            }
        }
    }

    pub(crate) fn refuse(self, error: CoordinatorError) {
        // A caller that stopped waiting needs no answer.
        match self {
            Waiter::One(reply) => {
                let _ = reply.send(Err(error));
            }
            Waiter::Group(reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

enum Answers {
    One(Answer),
    All(Vec<Answer>),
}

/// The commit pipeline over the coordinator's requests and encoded log entries.
pub(crate) type Machine = commit::Pipeline<Waiter, ReadFn, Vec<u8>>;
pub(crate) type Request = commit::Request<Waiter, ReadFn>;
type MachineBatch = commit::Batch<Waiter, ReadFn, Vec<u8>>;

/// A batch applied to the engine whose entries are not yet known to be durable.
pub(crate) struct Applied {
    pub batch: MachineBatch,
    /// The input that panicked the engine, if one did: its entry is the last one.
    pub poisoned: Option<Poisoned>,
}

impl Applied {
    /// The batch is not durable: every waiter gets `error()` and nothing is released.
    pub(crate) fn fail(self, error: impl Fn() -> CoordinatorError) {
        let (waiters, _reads) = self.batch.into_waiters();
        for waiter in waiters {
            waiter.refuse(error());
        }
    }
}

/// Applies inputs at the clock's time, never earlier than the engine's own clock, and
/// encodes each entry before the input moves into the engine. A panic is contained:
/// `poisoned` names the input at its log offset, and the engine must then be dropped.
pub(crate) struct Applier<'a> {
    pub engine: &'a mut Engine,
    pub clock: &'a dyn Clock,
    pub poisoned: Option<Poisoned>,
}

impl Apply for Applier<'_> {
    type Entry = Vec<u8>;

    fn now(&self) -> Time {
        self.clock.now_ms().max(self.engine.now())
    }

    fn apply(&mut self, now: Time, offset: u64, input: Input) -> Outcome<Vec<u8>> {
        let entry = Entry::new(now, input);
        let payload = entry.encode();
        match apply_contained(self.engine, entry.now, entry.input) {
            Ok(outputs) => Outcome::Applied(outputs, payload),
            Err(message) => {
                // The entry was encoded a moment ago, so it decodes.
                let input = Entry::decode(0, offset, &payload).map_or(Input::Tick, |e| e.input);
                let met = Met::Serving { recorded: false };
                self.poisoned = Some(Poisoned::new(offset, &input, message, met));
                Outcome::Panicked(payload)
            }
        }
    }
}

/// A batch is durable: routes the effects, sends the replies and runs the reads.
pub(crate) fn release(
    released: Released<Waiter, ReadFn>,
    engine: &Engine,
    routes: &Routes,
    metrics: &mut Metrics,
    offers: &mut OpenOffers,
) {
    metrics.heartbeats_absorbed += released.absorbed;
    for reply in released.replies {
        match reply {
            Answered::Tick(input) => {
                deliver(input, routes, metrics, offers);
            }
            Answered::One(waiter, input) => {
                if let Some(answer) = deliver(input, routes, metrics, offers) {
                    waiter.answer(Answers::One(answer));
                }
            }
            Answered::Group(waiter, inputs) => {
                let answers: Option<Vec<Answer>> = inputs
                    .into_iter()
                    .map(|input| deliver(input, routes, metrics, offers))
                    .collect();
                if let Some(answers) = answers {
                    waiter.answer(Answers::All(answers));
                }
            }
        }
    }
    metrics.queued = engine.queued();
    for read in released.reads {
        read(engine);
    }
}

/// Counts and routes one durable input's effects; its answer, if the engine got
/// through it.
fn deliver(
    input: commit::Applied,
    routes: &Routes,
    metrics: &mut Metrics,
    offers: &mut OpenOffers,
) -> Option<Answer> {
    let outputs = input.outputs?;
    metrics.inputs += 1;
    metrics.ticks += u64::from(input.tick);
    for effect in &outputs.effects {
        metrics.count_effect(effect);
        offers.see(input.at, effect);
    }
    if let (Some(grant), Some(Ok(accepted))) = (input.accepting, &outputs.reply) {
        if let Some(seconds) = offers.accepted(grant, input.at, accepted) {
            metrics.claim_to_start_seconds.observe(seconds);
        }
    }
    if matches!(outputs.reply, Some(Err(_))) {
        metrics.rejections += 1;
    }
    let delivery = routes.deliver(outputs.effects);
    metrics.effects_dropped += delivery.dropped;
    metrics.sessions_dropped += delivery.sessions_dropped;
    Some(outputs.reply)
}
