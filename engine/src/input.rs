//! Everything that can change the engine's state. Each input is logged by the driver
//! before its outputs are released, so replaying the log rebuilds the state exactly.

use crate::config::Config;
use crate::ids::{Fence, GrantId, InstanceId, JobId, TaskId, WorkerId};
use crate::schedule_spec::ScheduleCommand;
use crate::spec::{JobSpec, Payload};
use serde::{Deserialize, Serialize};

/// One logged step of the engine: a tick, a client command or a worker command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// Time passed; fire due timers. Every input also fires the timers due at its `now`.
    Tick,
    /// A command from a client (submit, cancel, signal).
    Client(ClientCommand),
    /// A command from one worker process.
    Worker {
        /// The worker sending it.
        worker: WorkerId,
        /// The sender's instance; a command from a replaced instance is refused.
        instance: InstanceId,
        /// What it asks.
        command: WorkerCommand,
    },
    /// The operator's configuration replaces the engine's (timeouts, caps, weights,
    /// limits), from now on. Logged like any input, so a restart replays the change
    /// and a snapshot holds the configuration in force; refused (and nothing changed)
    /// if a field is below its floor.
    Configure(Box<Config>),
}

/// What a client may ask of the engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientCommand {
    /// Run a job; validated before anything is stored.
    SubmitJob(JobSpec),
    /// Stop a job: ready tasks are cancelled, running attempts revoked.
    CancelJob {
        /// The job to stop.
        job: JobId,
    },
    /// Deliver a signal to a task suspended on `waitpoint`. The idempotency key makes a
    /// duplicated delivery harmless.
    Signal {
        /// The suspended task.
        task: TaskId,
        /// The waitpoint it must be suspended on.
        waitpoint: String,
        /// A second signal with the same key is answered as a duplicate.
        idempotency_key: String,
        /// Data stored with the signal for the resumed task to read.
        payload: Payload,
    },
    /// Add, pause, resume or delete a recurring job.
    Schedule(ScheduleCommand),
}

/// What a worker may ask of the engine. Commands on an attempt carry its `Fence`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerCommand {
    /// Join (or rejoin as a new instance) with what this process can run.
    Register {
        /// Tokens a task's requirements are matched against.
        capabilities: Vec<String>,
        /// Lanes served, in preference order; empty means the "default" lane.
        lanes: Vec<String>,
        /// Grants plus leases it may hold at once.
        max_concurrency: u32,
    },
    /// Keeps the instance from being declared lost.
    Heartbeat,
    /// Ask for up to `credits` grant offers now or as tasks become ready. Replaces any
    /// earlier outstanding request.
    RequestWork {
        /// How many offers the worker wants.
        credits: u32,
    },
    /// Stop receiving grants; running leases continue to completion.
    Drain,
    /// Leave: offered grants return to the queue and held tasks are requeued.
    Deregister,
    /// Take an offered task: starts the attempt's lease.
    AcceptGrant {
        /// The offer to accept.
        grant: GrantId,
    },
    /// Turn an offer down; the task goes back to the queue.
    ReleaseGrant {
        /// The offer to give back.
        grant: GrantId,
    },
    /// Extend the lease of a running attempt.
    Renew {
        /// The attempt to extend.
        fence: Fence,
    },
    /// The attempt succeeded.
    Complete {
        /// The attempt that finished.
        fence: Fence,
        /// What the task produced, kept for `keel output` and downstream reads.
        output: Payload,
    },
    /// The attempt failed; the retry policy decides what follows.
    Fail {
        /// The attempt that failed.
        fence: Fence,
        /// Why, as the handler reported it.
        error: String,
        /// A permanent failure is not retried.
        permanent: bool,
    },
    /// Give up the lease and wait for a signal on `waitpoint`.
    Suspend {
        /// The attempt that parks its task.
        fence: Fence,
        /// The name a signal must carry to resume the task.
        waitpoint: String,
        /// How long to wait for the signal; `None` waits for as long as it takes.
        timeout_ms: Option<u64>,
        /// What happens when the wait times out.
        on_timeout: SuspendTimeout,
    },
    /// The attempt used `amount` of a dimension of a budget. Counted once per
    /// `dedup_key` (per period for a tenant budget), so a resent report is answered as
    /// a duplicate; a report whose key was counted is answered so even after the
    /// attempt ended.
    ReportUsage {
        /// The attempt that used it.
        fence: Fence,
        /// The job's budget of this name, else its tenant's.
        budget: String,
        /// A dimension the budget limits, other than the engine-counted `attempts`
        /// and `attempt_ms`.
        dimension: String,
        /// How much was used.
        amount: u64,
        /// Names this report: the same key is counted once.
        dedup_key: String,
    },
    /// Append frames to the task's output stream. `from` is the position of the first
    /// frame among those this attempt has emitted (0 for its first), so a resent emit
    /// appends only what is new and a lost one is refused as a gap.
    Emit {
        /// The attempt emitting.
        fence: Fence,
        /// The attempt's count of frames before the first of `frames`.
        from: u64,
        /// The frames, in order.
        frames: Vec<Payload>,
    },
    /// The consumer has processed every frame of the stream it reads from task `from`
    /// before `cursor`; a retry of it resumes there.
    Ack {
        /// The consuming attempt.
        fence: Fence,
        /// The producer's key, as the consumer's edge names it.
        from: String,
        /// The next frame the consumer has not processed.
        cursor: u64,
    },
}

/// What happens to a suspended task whose waitpoint is not signalled in time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SuspendTimeout {
    /// The task fails permanently.
    #[default]
    Fail,
    /// The task resumes without a signal.
    Resume,
}

impl Input {
    /// Builds a worker command without spelling out the struct variant.
    pub fn worker(worker: &WorkerId, instance: InstanceId, command: WorkerCommand) -> Input {
        Input::Worker {
            worker: worker.clone(),
            instance,
            command,
        }
    }
}
