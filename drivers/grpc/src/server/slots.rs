//! The server's global counts: worker sessions and job watches open at once. A slot is
//! held for as long as its session or watch lives and given back when dropped.

use crate::status::limit_reached;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

pub(crate) struct Slots {
    sessions: Arc<Semaphore>,
    max_sessions: usize,
    watches: Arc<Semaphore>,
    max_watches: usize,
}

/// A held slot; dropping it frees the slot.
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Slots {
    pub(crate) fn new(max_sessions: usize, max_watches: usize) -> Slots {
        Slots {
            sessions: Arc::new(Semaphore::new(max_sessions.min(Semaphore::MAX_PERMITS))),
            max_sessions,
            watches: Arc::new(Semaphore::new(max_watches.min(Semaphore::MAX_PERMITS))),
            max_watches,
        }
    }

    /// A session slot, or RESOURCE_EXHAUSTED naming `max_sessions`.
    pub(crate) fn session(&self) -> Result<Slot, Status> {
        take(
            &self.sessions,
            "max_sessions",
            self.max_sessions,
            "this coordinator holds as many worker sessions as it may; retry later or elsewhere",
        )
    }

    /// A watch slot, or RESOURCE_EXHAUSTED naming `max_watches`.
    pub(crate) fn watch(&self) -> Result<Slot, Status> {
        take(
            &self.watches,
            "max_watches",
            self.max_watches,
            "this coordinator serves as many job watches as it may; retry later or poll DescribeJob",
        )
    }
}

fn take(semaphore: &Arc<Semaphore>, limit: &str, value: usize, what: &str) -> Result<Slot, Status> {
    semaphore
        .clone()
        .try_acquire_owned()
        .map(|permit| Slot { _permit: permit })
        .map_err(|_| limit_reached(limit, value as u64, what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn slots_are_refused_at_the_limit_and_freed_on_drop() {
        let slots = Slots::new(1, 2);
        let held = slots.session().unwrap();
        let refused = slots.session().err().unwrap();
        assert_eq!(refused.code(), Code::ResourceExhausted);
        assert!(refused
            .message()
            .starts_with("limit_reached: max_sessions = 1: "));
        drop(held);
        assert!(slots.session().is_ok());
        let (_a, _b) = (slots.watch().unwrap(), slots.watch().unwrap());
        assert!(slots
            .watch()
            .err()
            .unwrap()
            .message()
            .contains("max_watches = 2"));
    }
}
