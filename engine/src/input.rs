//! Everything that can change the engine's state. Each input is logged by the driver
//! before its outputs are released, so replaying the log rebuilds the state exactly.

use crate::ids::{Fence, GrantId, InstanceId, JobId, TaskId, WorkerId};
use crate::spec::{JobSpec, Payload};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// Time passed; fire due timers. Every input also fires the timers due at its `now`.
    Tick,
    Client(ClientCommand),
    Worker {
        worker: WorkerId,
        instance: InstanceId,
        command: WorkerCommand,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientCommand {
    SubmitJob(JobSpec),
    CancelJob {
        job: JobId,
    },
    /// Deliver a signal to a task suspended on `waitpoint`. The idempotency key makes a
    /// duplicated delivery harmless.
    Signal {
        task: TaskId,
        waitpoint: String,
        idempotency_key: String,
        payload: Payload,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerCommand {
    Register {
        capabilities: Vec<String>,
        /// Lanes served, in preference order; empty means the "default" lane.
        lanes: Vec<String>,
        max_concurrency: u32,
    },
    Heartbeat,
    /// Ask for up to `credits` grant offers now or as tasks become ready. Replaces any
    /// earlier outstanding request.
    RequestWork {
        credits: u32,
    },
    /// Stop receiving grants; running leases continue to completion.
    Drain,
    /// Leave: offered grants return to the queue and held tasks are requeued.
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
        output: Payload,
    },
    Fail {
        fence: Fence,
        error: String,
        /// A permanent failure is not retried.
        permanent: bool,
    },
    /// Give up the lease and wait for a signal on `waitpoint`.
    Suspend {
        fence: Fence,
        waitpoint: String,
        timeout_ms: Option<u64>,
        on_timeout: SuspendTimeout,
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
    pub fn worker(worker: &WorkerId, instance: InstanceId, command: WorkerCommand) -> Input {
        Input::Worker {
            worker: worker.clone(),
            instance,
            command,
        }
    }
}
