//! What goes into and comes out of the worker machine.

use keel_engine::{Fence, GrantId, InstanceId, JobId, SuspendTimeout, TaskId, TaskInput};

/// Milliseconds on the worker's own clock; only differences matter.
pub type Time = u64;

/// What the machine is told once, at start.
#[derive(Clone, Debug)]
pub struct Config {
    pub capabilities: Vec<String>,
    pub lanes: Vec<String>,
    /// Tasks run at once; at least 1.
    pub concurrency: u32,
    /// The instance the first registration presents.
    pub instance: InstanceId,
    /// First pause before reconnecting or registering a new instance; doubles with
    /// each failure in a row, up to `backoff_max_ms`.
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// Seeds the backoff's jitter, so peers spread out and a simulation replays.
    pub jitter_seed: u64,
    /// How long a command may wait for its answer before the connection is treated
    /// as broken.
    pub answer_timeout_ms: u64,
    /// How long a drain waits for running handlers before cancelling them.
    pub drain_timeout_ms: u64,
    /// Bytes of a frame that are not a completion's output, so an output fits a frame
    /// of the coordinator's announced size only up to that size minus this.
    pub frame_overhead_bytes: u64,
    /// Failure and progress messages are cut to these many bytes.
    pub max_error_bytes: usize,
    pub max_progress_bytes: usize,
}

/// A command for the coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Register {
        instance: InstanceId,
        capabilities: Vec<String>,
        lanes: Vec<String>,
        max_concurrency: u32,
    },
    Heartbeat,
    RequestWork {
        credits: u32,
    },
    Drain,
    Deregister,
    AcceptGrant {
        grant: GrantId,
    },
    ReleaseGrant {
        grant: GrantId,
    },
    Renew {
        fence: Fence,
    },
    Complete {
        fence: Fence,
        output: Vec<u8>,
    },
    Fail {
        fence: Fence,
        error: String,
        permanent: bool,
    },
    Suspend {
        fence: Fence,
        waitpoint: String,
        timeout_ms: Option<u64>,
        on_timeout: SuspendTimeout,
    },
    Progress {
        fence: Fence,
        per_mille: u32,
        message: String,
    },
}

/// How a handler's attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Complete(Vec<u8>),
    Fail {
        error: String,
        permanent: bool,
    },
    /// Give up the lease until the waitpoint is signalled.
    Suspend {
        waitpoint: String,
        timeout_ms: Option<u64>,
        on_timeout: SuspendTimeout,
    },
}

/// A grant the coordinator offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub grant: GrantId,
    pub job: JobId,
    pub task: TaskId,
    /// The task's key in its job's spec.
    pub key: String,
    pub attempt: u32,
    pub payload: Vec<u8>,
    /// The outputs of the task's upstream tasks, in its group's order.
    pub inputs: Vec<TaskInput>,
    /// The payload of the signal that resumed the task, when one did.
    pub signal: Option<Vec<u8>>,
}

/// What the coordinator said to this worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The answer to the command sent under `seq`.
    Reply {
        seq: u64,
        answer: Answer,
    },
    GrantOffered(Offer),
    GrantWithdrawn {
        grant: GrantId,
    },
    LeaseRevoked {
        fence: Fence,
    },
    /// The coordinator declared an instance of this worker lost (`None`: this one).
    Lost {
        instance: Option<InstanceId>,
    },
    /// A blacklisting ended: grants may be offered again.
    Readmitted,
}

/// The coordinator's answer to one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Registered(Registered),
    /// Accepted with nothing to report (heartbeat, work request, drain, release...).
    Done,
    LeaseStarted {
        fence: Fence,
    },
    Renewed,
    Completed,
    Failed,
    Suspended,
    Refused(Refusal),
}

/// The cadences a registration announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registered {
    pub lease_ttl_ms: u64,
    pub liveness_timeout_ms: u64,
    /// The largest frame the coordinator accepts, if it says.
    pub frame_bytes: Option<u64>,
}

/// A refused command: what the refusal means to this worker, and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// This instance is older than the one the coordinator knows.
    StaleInstance { current: Option<InstanceId> },
    /// The coordinator declared this instance lost, or no longer knows the worker.
    Lost,
    /// This instance registered before with another configuration.
    Conflict,
    /// The attempt (or grant) is no longer this worker's.
    Fencing,
    /// A value is over one of the coordinator's limits.
    TooLarge,
    /// The attempt's output did not fit a limit, and the coordinator failed the
    /// attempt for good with that refusal as its error.
    OutputRefused,
    /// The command is malformed; sending it again cannot help.
    Invalid,
    /// Anything else, e.g. a limit that may have room later.
    Other,
}

impl Refusal {
    /// The refusal a stable rejection code (`keel_engine::Rejection::code`, or the
    /// server's own `invalid_argument` and `limit_reached`) stands for.
    pub fn from_code(code: &str, message: String, current: Option<InstanceId>) -> Refusal {
        let kind = match code {
            "stale_instance" => RefusalKind::StaleInstance { current },
            "worker_lost" | "unknown_worker" => RefusalKind::Lost,
            "registration_conflict" => RefusalKind::Conflict,
            "stale_fence" | "not_lease_holder" | "unknown_task" | "unknown_grant"
            | "grant_not_yours" => RefusalKind::Fencing,
            "too_large" => RefusalKind::TooLarge,
            "output_over_limit" => RefusalKind::OutputRefused,
            "invalid_worker" | "capability_token" | "invalid_name" | "invalid_argument" => {
                RefusalKind::Invalid
            }
            _ => RefusalKind::Other,
        };
        Refusal { kind, message }
    }
}

/// A lease the worker now holds: run the handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub job: JobId,
    /// The task's key in its job's spec.
    pub key: String,
    pub fence: Fence,
    pub payload: Vec<u8>,
    /// The offer's inputs and signal payload, passed through to the handler.
    pub inputs: Vec<TaskInput>,
    pub signal: Option<Vec<u8>>,
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Open a connection to the coordinator, then call `connected` (or `disconnected`).
    Connect,
    /// Close the connection; the machine reconnects after a pause.
    Disconnect,
    /// Send `command` under `seq`; its answer comes back as `Event::Reply`.
    Send { seq: u64, command: Command },
    /// Run the handler for this lease; report with `handler_finished`.
    Start(Assignment),
    /// Stop the handler running this attempt; its lease is not this worker's anymore.
    Cancel(Fence),
    /// The worker now trusts its lease on `task` (under the fence) until this time, or
    /// no longer holds one. A simulator checks these beliefs; the SDK needs none.
    Trust {
        task: TaskId,
        until: Option<(Fence, Time)>,
    },
    /// The machine is done: nothing more will come out of it.
    Stopped(Stop),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Drained and deregistered (or gave up on the coordinator while draining).
    Finished,
    /// The coordinator refused the registration as malformed.
    Refused(String),
}

/// What a worker did, counted by the machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub completed: u64,
    pub failed: u64,
    pub suspended: u64,
    /// Handlers stopped because their lease was revoked or could not be renewed.
    pub revoked: u64,
    /// Outcomes the coordinator refused because the attempt was no longer this worker's.
    pub stale: u64,
    pub reconnects: u64,
    /// Times this worker had to register a new instance.
    pub registrations_refused: u64,
}
