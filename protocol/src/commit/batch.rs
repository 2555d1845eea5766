//! What the pipeline carries: requests as they arrive, a batch applied to the engine,
//! and what comes back out of a batch (replies released once durable, or refusals).

use keel_engine::{GrantId, Input, Outputs, Time, WorkerCommand};

/// A request for the engine, with whoever waits for its answer (`W`) or a read that
/// runs against the engine once everything before it is durable (`R`).
pub enum Request<W, R> {
    /// One input, answered on its own.
    Input {
        /// What to apply.
        input: Input,
        /// Who gets the answer.
        waiter: W,
    },
    /// Inputs applied one after another and answered together; never split across
    /// batches.
    Group {
        /// What to apply, in order.
        inputs: Vec<Input>,
        /// Who gets the answers.
        waiter: W,
    },
    /// A read: it sees the state of every input before it, once they are durable.
    Read(R),
}

impl<W, R> Request<W, R> {
    /// How many inputs the request carries toward a batch's limit.
    pub fn inputs(&self) -> usize {
        match self {
            Request::Input { .. } => 1,
            Request::Group { inputs, .. } => inputs.len(),
            Request::Read(_) => 0,
        }
    }
}

/// One input as the engine took it.
#[derive(Clone, Debug)]
pub struct Applied {
    /// The engine time it was applied at.
    pub at: Time,
    /// The log end just after its entry (or, for an input answered without an entry,
    /// after the last entry before it): its outputs may leave once the log is durable
    /// up to here.
    pub position: u64,
    /// It was a timer tick, which nobody waits for.
    pub tick: bool,
    /// The grant it accepted, if it was an accept.
    pub accepting: Option<GrantId>,
    /// A repeated heartbeat answered without reaching the engine or the log.
    pub absorbed: bool,
    /// None when the engine did not get through it (it panicked on it or before it).
    pub outputs: Option<Outputs>,
}

impl Applied {
    pub(crate) fn new(at: Time, position: u64, input: &Input) -> Applied {
        Applied {
            at,
            position,
            tick: *input == Input::Tick,
            accepting: match input {
                Input::Worker {
                    command: WorkerCommand::AcceptGrant { grant },
                    ..
                } => Some(*grant),
                _ => None,
            },
            absorbed: false,
            outputs: None,
        }
    }
}

/// The answer a released batch gives one request.
pub enum Reply<W> {
    /// A single input's waiter and what its input did.
    One(W, Applied),
    /// A group's waiter and what each of its inputs did, in order.
    Group(W, Vec<Applied>),
    /// A timer tick: nobody waits for it, but its effects leave like any others.
    Tick(Applied),
}

/// Inputs applied to the engine together, to be appended as one batch.
pub struct Batch<W, R, E> {
    pub(crate) id: u64,
    /// Where its first entry goes in the log.
    pub(crate) first: u64,
    pub(crate) entries: Vec<E>,
    /// Entries handed to the log so far (they stay counted once taken).
    pub(crate) entry_count: u64,
    pub(crate) replies: Vec<Reply<W>>,
    pub(crate) reads: Vec<R>,
    pub(crate) absorbed: u64,
    /// The engine panicked on the last entry: the engine must be discarded.
    pub(crate) panicked: bool,
}

impl<W, R, E> Batch<W, R, E> {
    /// Numbers batches in the order they were applied, to match an append's answer.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The log offset of the batch's first entry.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The batch's entries in the order applied (taken once, to be appended).
    pub fn take_entries(&mut self) -> Vec<E> {
        std::mem::take(&mut self.entries)
    }

    /// How many entries the batch appends.
    pub fn len(&self) -> u64 {
        self.entry_count
    }

    /// Whether the batch appends nothing (only absorbed heartbeats or reads).
    pub fn is_empty(&self) -> bool {
        self.entry_count == 0
    }

    /// Whether reads wait on this batch: they must see exactly its state.
    pub fn has_reads(&self) -> bool {
        !self.reads.is_empty()
    }

    /// Whether the engine panicked on the batch's last entry.
    pub fn panicked(&self) -> bool {
        self.panicked
    }

    /// The batch will never be released: who waits for it, and its reads.
    pub fn into_waiters(self) -> (Vec<W>, Vec<R>) {
        let waiters = self
            .replies
            .into_iter()
            .filter_map(|reply| match reply {
                Reply::One(w, _) | Reply::Group(w, _) => Some(w),
                Reply::Tick(_) => None,
            })
            .collect();
        (waiters, self.reads)
    }

    /// The batch is durable: what it answers, in arrival order.
    pub fn into_released(self) -> Released<W, R> {
        Released {
            replies: self.replies,
            reads: self.reads,
            absorbed: self.absorbed,
            entries: self.entry_count,
        }
    }
}

/// A durable batch: send its replies and effects, then run its reads.
pub struct Released<W, R> {
    /// One answer per request, in arrival order.
    pub replies: Vec<Reply<W>>,
    /// Reads to run against the engine now.
    pub reads: Vec<R>,
    /// Heartbeats answered without an entry.
    pub absorbed: u64,
    /// Entries the batch appended.
    pub entries: u64,
}

/// Requests answered with a refusal: nothing of them is released.
pub struct Refused<W, R> {
    /// Who waits for an answer.
    pub waiters: Vec<W>,
    /// Reads that will not run.
    pub reads: Vec<R>,
    /// What to tell them all.
    pub refusal: Refusal,
}

/// Why the log could not take a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The store is full.
    NoSpace,
    /// The store cannot be reached.
    Unreachable,
    /// Any other failure to store.
    Failed,
}

/// How an append ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendResult {
    /// The batch is in the log for good.
    Durable,
    /// The log refused or lost the append; it may or may not hold the batch.
    Failed(Fault),
    /// Another leader's epoch fenced the append: leadership is lost.
    Fenced {
        /// The epoch that fenced it.
        current: u64,
    },
}

/// Why a request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its batch's append failed: it may or may not be in the log.
    NotDurable(Fault),
    /// The batch before it failed to append: nothing of it was recorded.
    Unrecorded(Fault),
    /// The engine is being rebuilt from the log after a failed append.
    Unavailable(Fault),
    /// Rebuilt after a failed append, and pausing before the log is tried again.
    Paused(Fault),
    /// Leadership was lost (fenced at this epoch when known).
    NotLeader {
        /// The epoch that fenced the append, if one did.
        fenced_by: Option<u64>,
    },
    /// Serving stopped.
    Stopped,
}
