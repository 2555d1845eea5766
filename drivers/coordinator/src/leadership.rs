//! Holding a partition: waiting to acquire it (a standby), renewing the lease in the
//! background, and noticing when it is lost. The log's epoch is what keeps a deposed
//! coordinator from writing; the lease only decides when a standby may take over, so
//! a coordinator stops serving no later than its lease's end as the log measures it.

use crate::error::{CoordinatorError, Deposed};
use keel_log::{Epoch, Lease, Log, LogError, Partition};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Whether a coordinator serves its partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Leading,
    Deposed(Deposed),
    /// Shut down, or every handle dropped.
    Stopped,
}

/// The lease as this coordinator knows it, shared by the engine task, the renewal task
/// and every handle.
pub(crate) struct Leadership {
    pub partition: Partition,
    pub epoch: Epoch,
    pub holder: String,
    valid_until: Mutex<Instant>,
    status: watch::Sender<Status>,
}

impl Leadership {
    pub fn new(lease: &Lease) -> Leadership {
        Leadership {
            partition: lease.partition,
            epoch: lease.epoch,
            holder: lease.holder.clone(),
            valid_until: Mutex::new(lease.valid_until),
            status: watch::Sender::new(Status::Leading),
        }
    }

    /// Leading, and the lease has not run out.
    pub fn is_leader(&self) -> bool {
        self.status() == Status::Leading && Instant::now() < self.valid_until()
    }

    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    /// Leaves `Leading` for good; a later reason does not replace the first.
    pub fn end(&self, status: Status) {
        self.status.send_if_modified(|current| {
            let change = *current == Status::Leading && status != Status::Leading;
            if change {
                *current = status;
            }
            change
        });
    }

    /// Checks the lease before serving; marks it lapsed if it ran out.
    pub fn check(&self) -> Result<(), CoordinatorError> {
        if self.status() == Status::Leading && Instant::now() >= self.valid_until() {
            tracing::warn!(
                partition = self.partition,
                epoch = self.epoch,
                "lease lapsed"
            );
            self.end(Status::Deposed(Deposed::LeaseLapsed));
        }
        match self.status() {
            Status::Leading => Ok(()),
            other => Err(self.refusal(other)),
        }
    }

    /// The error for a request this coordinator no longer serves.
    pub fn refusal(&self, status: Status) -> CoordinatorError {
        match status {
            Status::Deposed(why) => CoordinatorError::NotLeader {
                partition: self.partition,
                epoch: self.epoch,
                why,
            },
            Status::Leading | Status::Stopped => CoordinatorError::Stopped,
        }
    }

    /// The lease to hand back to the log when stepping down.
    pub fn lease(&self) -> Lease {
        Lease {
            partition: self.partition,
            holder: self.holder.clone(),
            epoch: self.epoch,
            valid_until: self.valid_until(),
        }
    }

    fn valid_until(&self) -> Instant {
        *self
            .valid_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn extend(&self, until: Instant) {
        let mut valid = self
            .valid_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *valid = (*valid).max(until);
    }
}

/// How often a standby asks for the partition.
fn poll_interval(ttl: Duration) -> Duration {
    (ttl / 5).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Takes the partition, waiting while another holder's lease is live.
pub(crate) async fn acquire<L: Log>(
    log: &L,
    partition: Partition,
    holder: &str,
    ttl: Duration,
) -> Result<Lease, CoordinatorError> {
    let mut waiting = false;
    loop {
        match log.acquire(partition, holder, ttl).await {
            Ok(lease) => {
                tracing::info!(partition, epoch = lease.epoch, holder, "leading");
                return Ok(lease);
            }
            Err(LogError::LeaseHeld { holder: other, .. }) => {
                if !waiting {
                    tracing::info!(partition, holder, leader = other, "standing by");
                    waiting = true;
                }
                tokio::time::sleep(poll_interval(ttl)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Aborts the renewal task when dropped, so it never outlives the engine task.
pub(crate) struct Renewal(JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the lease every third of its TTL. A renewal that fails is retried until the
/// lease would run out; then, or as soon as the log says another epoch is current,
/// this coordinator is deposed.
pub(crate) fn spawn_renewal<L: Log + 'static>(
    log: Arc<L>,
    mut lease: Lease,
    ttl: Duration,
    leadership: Arc<Leadership>,
) -> Renewal {
    let retry = (ttl / 10).max(Duration::from_millis(5));
    Renewal(tokio::spawn(async move {
        let mut wait = ttl / 3;
        loop {
            tokio::time::sleep(wait).await;
            if leadership.status() != Status::Leading {
                return;
            }
            let left = lease.valid_until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, log.renew(&lease, ttl)).await {
                Ok(Ok(renewed)) => {
                    leadership.extend(renewed.valid_until);
                    lease = renewed;
                    wait = ttl / 3;
                }
                Ok(Err(LogError::Fenced { current, .. })) => {
                    tracing::warn!(
                        partition = lease.partition,
                        epoch = lease.epoch,
                        current,
                        "fenced"
                    );
                    leadership.end(Status::Deposed(Deposed::Fenced { current }));
                    return;
                }
                Ok(Err(e)) if Instant::now() < lease.valid_until => {
                    tracing::warn!(partition = lease.partition, error = %e, "lease renewal failed; retrying");
                    let left = lease.valid_until.saturating_duration_since(Instant::now());
                    wait = retry.min(left);
                }
                Ok(Err(_)) | Err(_) => {
                    tracing::warn!(
                        partition = lease.partition,
                        epoch = lease.epoch,
                        "lease lapsed"
                    );
                    leadership.end(Status::Deposed(Deposed::LeaseLapsed));
                    return;
                }
            }
        }
    }))
}
