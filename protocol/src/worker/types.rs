//! What goes into and comes out of the worker machine.

use keel_engine::{Fence, GrantId, InstanceId, JobId, SuspendTimeout, TaskId, TaskInput};

/// Milliseconds on the worker's own clock; only differences matter.
pub type Time = u64;

/// What the machine is told once, at start.
#[derive(Clone, Debug)]
pub struct Config {
    /// What the worker advertises at registration.
    pub capabilities: Vec<String>,
    /// Lanes served, in preference order.
    pub lanes: Vec<String>,
    /// Tasks run at once; at least 1.
    pub concurrency: u32,
    /// The instance the first registration presents.
    pub instance: InstanceId,
    /// First pause before reconnecting or registering a new instance; doubles with
    /// each failure in a row, up to `backoff_max_ms`.
    pub backoff_min_ms: u64,
    /// Longest pause between reconnect or registration tries.
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
    /// Progress messages are cut to these many bytes.
    pub max_progress_bytes: usize,
}

/// A command for the coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Join under `instance`, or present it again after a reconnect.
    Register {
        /// The instance this process registers as.
        instance: InstanceId,
        /// What it advertises.
        capabilities: Vec<String>,
        /// Lanes served, in preference order.
        lanes: Vec<String>,
        /// Tasks it runs at once.
        max_concurrency: u32,
    },
    /// Keeps the instance from being declared lost.
    Heartbeat,
    /// Ask for up to `credits` offers (free slots).
    RequestWork {
        /// How many offers it can take now.
        credits: u32,
    },
    /// Stop receiving grants; running handlers finish.
    Drain,
    /// Leave for good; held tasks are requeued.
    Deregister,
    /// Take an offer, starting its lease.
    AcceptGrant {
        /// The offer to accept.
        grant: GrantId,
    },
    /// Turn an offer down (no free slot any more).
    ReleaseGrant {
        /// The offer to give back.
        grant: GrantId,
    },
    /// Extend a running attempt's lease.
    Renew {
        /// The attempt whose lease to extend.
        fence: Fence,
    },
    /// Report the attempt succeeded.
    Complete {
        /// The attempt that finished.
        fence: Fence,
        /// What the handler produced.
        output: Vec<u8>,
    },
    /// Report the attempt failed.
    Fail {
        /// The attempt that failed.
        fence: Fence,
        /// The handler's error, cut to `max_error_bytes`.
        error: String,
        /// Not worth retrying (the engine skips the retry policy).
        permanent: bool,
    },
    /// Park the task on a waitpoint and give up the lease.
    Suspend {
        /// The attempt that parks its task.
        fence: Fence,
        /// The name a signal must carry to resume it.
        waitpoint: String,
        /// How long to wait for the signal; `None` waits as long as it takes.
        timeout_ms: Option<u64>,
        /// What happens when the wait times out.
        on_timeout: SuspendTimeout,
    },
    /// Tell watchers how far a running attempt got; the engine does not log it.
    Progress {
        /// The running attempt.
        fence: Fence,
        /// Progress from 0 to 1000.
        per_mille: u32,
        /// Free text, cut to `max_progress_bytes`.
        message: String,
    },
}

/// How a handler's attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Succeeded with this output.
    Complete(Vec<u8>),
    /// The attempt failed.
    Fail {
        /// What went wrong, for the attempt history.
        error: String,
        /// Retrying cannot help; the task fails now.
        permanent: bool,
    },
    /// Give up the lease until the waitpoint is signalled.
    Suspend {
        /// The name a signal must carry to resume the task.
        waitpoint: String,
        /// How long to wait; `None` waits as long as it takes.
        timeout_ms: Option<u64>,
        /// What happens when the wait times out.
        on_timeout: SuspendTimeout,
    },
}

/// A grant the coordinator offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// What the worker presents to accept it.
    pub grant: GrantId,
    /// The job the task belongs to.
    pub job: JobId,
    /// The task offered.
    pub task: TaskId,
    /// The task's key in its job's spec.
    pub key: String,
    /// Which attempt it would start, from 1.
    pub attempt: u32,
    /// The task's input.
    pub payload: Vec<u8>,
    /// The outputs of the task's upstream tasks, in its group's order.
    pub inputs: Vec<TaskInput>,
    /// The payload of the signal that resumed the task, when one did.
    pub signal: Option<Vec<u8>>,
    /// The keys of the tasks whose streams it reads while it runs.
    pub streams: Vec<String>,
}

/// What the coordinator said to this worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The answer to the command sent under `seq`.
    Reply {
        /// The sequence number the command was sent under.
        seq: u64,
        /// What the coordinator answered.
        answer: Answer,
    },
    /// A task is offered to this worker.
    GrantOffered(Offer),
    /// An offer was taken back before it was accepted.
    GrantWithdrawn {
        /// The offer that is no longer valid.
        grant: GrantId,
    },
    /// An attempt must stop: its lease is no longer this worker's.
    LeaseRevoked {
        /// The attempt to stop.
        fence: Fence,
    },
    /// The coordinator declared an instance of this worker lost (`None`: this one).
    Lost {
        /// The lost instance, if the coordinator named one.
        instance: Option<InstanceId>,
    },
    /// A blacklisting ended: grants may be offered again.
    Readmitted,
}

/// The coordinator's answer to one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The registration is accepted; its cadences follow.
    Registered(Registered),
    /// Accepted with nothing to report (heartbeat, work request, drain, release...).
    Done,
    /// The grant was accepted; the attempt holds a lease.
    LeaseStarted {
        /// The fence every later command on the attempt carries.
        fence: Fence,
    },
    /// The lease was extended.
    Renewed,
    /// The success is recorded.
    Completed,
    /// The failure is recorded.
    Failed,
    /// The suspension is recorded.
    Suspended,
    /// The command was refused; the refusal says what that means here.
    Refused(Refusal),
}

/// The cadences a registration announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registered {
    /// How long a lease lasts unrenewed; renewals are paced from it.
    pub lease_ttl_ms: u64,
    /// How long silence takes to be declared lost; heartbeats are paced from it.
    pub liveness_timeout_ms: u64,
    /// The largest frame the coordinator accepts, if it says.
    pub frame_bytes: Option<u64>,
}

/// A refused command: what the refusal means to this worker, and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What the worker must do about it.
    pub kind: RefusalKind,
    /// The coordinator's text, for logs.
    pub message: String,
}

/// How a refusal affects the worker machine, grouped from rejection codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// This instance is older than the one the coordinator knows.
    StaleInstance {
        /// The instance the coordinator knows, if it said; the next one starts above it.
        current: Option<InstanceId>,
    },
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
    /// A coordinator-wide limit is reached (`limit_reached`, e.g. the bytes it may
    /// store): there may be room later, but not for this command now.
    Full,
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
            "limit_reached" => RefusalKind::Full,
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
    /// The job the task belongs to.
    pub job: JobId,
    /// The task's key in its job's spec.
    pub key: String,
    /// The attempt's fence, carried by every report on it.
    pub fence: Fence,
    /// The task's input.
    pub payload: Vec<u8>,
    /// The outputs of the task's upstream tasks, from the offer.
    pub inputs: Vec<TaskInput>,
    /// The payload of the signal that resumed the task, from the offer.
    pub signal: Option<Vec<u8>>,
    /// The keys of the tasks whose streams it reads, from the offer.
    pub streams: Vec<String>,
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Open a connection to the coordinator, then call `connected` (or `disconnected`).
    Connect,
    /// Close the connection; the machine reconnects after a pause.
    Disconnect,
    /// Send `command` under `seq`; its answer comes back as `Event::Reply`.
    Send {
        /// Numbers the command so its reply can be matched.
        seq: u64,
        /// What to send.
        command: Command,
    },
    /// Run the handler for this lease; report with `handler_finished`.
    Start(Assignment),
    /// Stop the handler running this attempt; its lease is not this worker's anymore.
    Cancel(Fence),
    /// The worker now trusts its lease on `task` (under the fence) until this time, or
    /// no longer holds one. A simulator checks these beliefs; the SDK needs none.
    Trust {
        /// The task the lease is on.
        task: TaskId,
        /// The fence and the local time the lease is trusted until; `None` when none is held.
        until: Option<(Fence, Time)>,
    },
    /// The coordinator refused the outcome the handler reported for this attempt, so
    /// what it records is not what the handler returned. Shells log it: a handler that
    /// returned an output is otherwise taken to have succeeded.
    OutcomeRefused {
        /// The attempt whose outcome was refused.
        fence: Fence,
        /// The coordinator's text.
        message: String,
        /// What became of the attempt instead.
        instead: Instead,
    },
    /// The machine is done: nothing more will come out of it.
    Stopped(Stop),
}

/// What became of an attempt whose reported outcome the coordinator refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instead {
    /// Failed for good: by the coordinator itself, or reported so by the machine.
    FailedForGood,
    /// Reported as failed, to be retried by the task's policy.
    FailedToRetry,
    /// Dropped: the attempt is no longer this worker's, or its failure was malformed.
    Dropped,
}

impl Instead {
    /// A few words for logs.
    pub fn words(self) -> &'static str {
        match self {
            Instead::FailedForGood => "the attempt failed for good",
            Instead::FailedToRetry => "the attempt failed, to be retried",
            Instead::Dropped => "the report is dropped",
        }
    }
}

/// Why the machine stopped.
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
    /// Attempts the coordinator recorded as succeeded.
    pub completed: u64,
    /// Attempts the coordinator recorded as failed.
    pub failed: u64,
    /// Attempts that parked their task.
    pub suspended: u64,
    /// Handlers stopped because their lease was revoked or could not be renewed.
    pub revoked: u64,
    /// Outcomes the coordinator refused because the attempt was no longer this worker's.
    pub stale: u64,
    /// Times the connection was lost or dropped and had to be opened again.
    pub reconnects: u64,
    /// Times this worker had to register a new instance.
    pub registrations_refused: u64,
}
