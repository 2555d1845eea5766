//! Identifiers and the fencing triple. Plain newtypes so a task id can never be passed
//! where a job id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Logical time in milliseconds, injected by the driver or the simulator.
pub type Time = u64;

/// A job, numbered by the engine in submission order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId(pub u64);

/// A task, numbered by the engine across all jobs; never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskId(pub u64);

/// A claim-grant offer, numbered by the engine; never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GrantId(pub u64);

/// A worker as named by itself. One name is served by one instance at a time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkerId(pub String);

/// One incarnation of a worker process. A restarted process registers with a new one,
/// which tells the engine that the old process and its leases are gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstanceId(pub u64);

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
}
