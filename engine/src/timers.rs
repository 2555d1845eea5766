//! Every timer the engine runs, in one ordered set keyed by (due time, timer). Timers
//! whose subject changed since they were armed re-check on firing, so frequent updates
//! (heartbeats, renewals) cost no set operations.

use crate::ids::{GrantId, JobId, TaskId, Time, WorkerId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Timer {
    GrantExpiry(GrantId),
    LeaseExpiry(TaskId),
    AttemptTimeout(TaskId),
    /// A delayed task or a retry backoff becomes ready.
    TaskDue(TaskId),
    SuspendTimeout(TaskId),
    JobDeadline(JobId),
    /// A finished job is forgotten.
    JobRetention(JobId),
    WorkerLiveness(WorkerId),
    BlacklistEnd(WorkerId),
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Timers {
    set: BTreeSet<(Time, Timer)>,
}

impl Timers {
    pub fn arm(&mut self, at: Time, timer: Timer) {
        self.set.insert((at, timer));
    }

    pub fn disarm(&mut self, at: Time, timer: Timer) {
        self.set.remove(&(at, timer));
    }

    pub fn next(&self) -> Option<Time> {
        self.set.first().map(|(t, _)| *t)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub fn pop_due(&mut self, now: Time) -> Option<(Time, Timer)> {
        if self.set.first()?.0 <= now {
            self.set.pop_first()
        } else {
            None
        }
    }

    pub fn contains(&self, at: Time, timer: &Timer) -> bool {
        self.set.contains(&(at, timer.clone()))
    }
}
