//! Identifiers and the fencing triple. Newtypes so a task id can never be passed where a
//! job id is expected. Their fields are private to the engine, which alone numbers them;
//! outside code builds one from a number with `new` (wire decoding, scenario files,
//! tests), reads it back with `get` (or `WorkerId::as_str`), and asks for the i-th task
//! of a job with [`TaskId::nth_after`] rather than adding to the number itself. Each
//! serializes as its bare inner value, so logs, snapshots and goldens hold plain numbers.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Logical time in milliseconds, injected by the driver or the simulator.
pub type Time = u64;

/// A job, numbered by the engine in submission order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId(pub(crate) u64);

/// A task, numbered by the engine across all jobs; never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskId(pub(crate) u64);

/// A claim-grant offer, numbered by the engine; never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GrantId(pub(crate) u64);

/// A worker as named by itself. One name is served by one instance at a time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkerId(pub(crate) String);

/// One incarnation of a worker process. A restarted process registers with a new one,
/// which tells the engine that the old process and its leases are gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstanceId(pub(crate) u64);

/// What a worker presents with every command on a task. The epoch strictly increases
/// every time a lease on the task starts, so a zombie holding an older fence is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Fence {
    /// The task the lease is on.
    pub task: TaskId,
    /// The attempt it belongs to.
    pub attempt: u32,
    /// The task's lease count when this lease started.
    pub epoch: u64,
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "j{}", self.0)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "g{}", self.0)
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "i{}", self.0)
    }
}

impl fmt::Display for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/a{}/e{}", self.task, self.attempt, self.epoch)
    }
}

impl WorkerId {
    /// A worker id from any string; validated when the worker registers.
    pub fn new(name: impl Into<String>) -> Self {
        WorkerId(name.into())
    }

    /// The name this id carries.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name this id carries, taken out of the id.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl JobId {
    /// The job id numbered `n`, as decoded from the wire, a file or a test; the engine
    /// numbers the ones it creates itself.
    pub const fn new(n: u64) -> Self {
        JobId(n)
    }

    /// The number this id carries, for encoding it on the wire or in a file.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl TaskId {
    /// The task id numbered `n`, as decoded from the wire, a file or a test; the engine
    /// numbers the ones it creates itself.
    pub const fn new(n: u64) -> Self {
        TaskId(n)
    }

    /// The number this id carries, for encoding it on the wire or in a file.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl GrantId {
    /// The grant id numbered `n`, as decoded from the wire, a file or a test; the engine
    /// numbers the ones it creates itself.
    pub const fn new(n: u64) -> Self {
        GrantId(n)
    }

    /// The number this id carries, for encoding it on the wire or in a file.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl InstanceId {
    /// The instance id numbered `n`, as decoded from the wire, a file or a test; the engine
    /// numbers the ones it creates itself.
    pub const fn new(n: u64) -> Self {
        InstanceId(n)
    }

    /// The number this id carries, for encoding it on the wire or in a file.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl TaskId {
    /// The `i`-th task (counting from 0) of a job whose first task is `first`: the engine
    /// numbers a job's tasks consecutively in the order the job declares them. Saturates
    /// rather than wraps, so a bad index names a task no job holds instead of a real one.
    pub const fn nth_after(first: TaskId, i: u64) -> TaskId {
        TaskId(first.0.saturating_add(i))
    }
}
