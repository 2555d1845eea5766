//! Holding a partition: acquiring it (waiting as a standby), renewing the lease in the
//! background, and noticing when it is lost. The log's epoch is what keeps a deposed
//! coordinator from writing; the lease only decides when a standby may take over, so
//! a coordinator stops serving no later than its lease's end as the log measures it.
//!
//! A coordinator leads in terms: each acquisition is a new epoch. Between terms it
//! stands by and refuses requests; it stops for good only when shut down, when it may
//! not take the partition back (`CoordinatorConfig::rejoin`), or when the engine or
//! the log make serving impossible without an operator.
//!
//! The renewal runs in its own task and its log call on the blocking pool for a log
//! that blocks, so no load on the runtime delays it; while it is due or under way the
//! engine task starts no append or snapshot, so on a log with one writer at a time
//! (redb) it waits for at most the one write already under way.

use crate::error::{CoordinatorError, Deposed};
use crate::io::run_io;
use crate::poison::Poisoned;
use keel_log::{Epoch, Log, LogError, Partition};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Whether a coordinator serves its partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Leading,
    /// The last term ended for this reason; standing by to take the partition back.
    Deposed(Deposed),
    /// For good; [`Leadership::stop_reason`] says why.
    Stopped,
}

/// Why a coordinator stopped for good.
#[derive(Clone, Debug)]
pub(crate) enum Stop {
    /// Shut down, or every handle dropped.
    Shutdown,
    /// Lost its partition and was not to take it back.
    Lost(Deposed),
    /// The engine panicked applying an input.
    Panicked(Poisoned),
    /// Recovery met an entry that panics the engine.
    PoisonedLog(Poisoned),
    /// Recovery failed in a way waiting does not mend (a corrupt log).
    Failed(String),
}

/// The partition as this coordinator holds (or held) it, shared by the engine task, the
/// renewal task and every handle, across terms.
pub(crate) struct Leadership {
    pub partition: Partition,
    /// The current (or last) term's lease.
    lease: Mutex<keel_log::Leadership>,
    status: watch::Sender<Status>,
    stop: Mutex<Option<Stop>>,
    /// A renewal is under way: the engine task starts no write until it ends.
    renewing: watch::Sender<bool>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Leadership {
    /// A coordinator holding `lease`, not yet serving it.
    pub(crate) fn new(lease: &keel_log::Leadership) -> Leadership {
        Leadership {
            partition: lease.partition,
            lease: Mutex::new(lease.clone()),
            status: watch::Sender::new(Status::Deposed(Deposed::LeaseLapsed)),
            stop: Mutex::new(None),
            renewing: watch::Sender::new(false),
        }
    }

    /// A new term's lease, before its engine is recovered.
    pub(crate) fn adopt(&self, lease: &keel_log::Leadership) {
        *locked(&self.lease) = lease.clone();
    }

    /// Starts serving the adopted lease.
    pub(crate) fn lead(&self) {
        self.status.send_if_modified(|current| {
            let change = matches!(current, Status::Deposed(_));
            if change {
                *current = Status::Leading;
            }
            change
        });
    }

    /// Leading, and the lease has not run out.
    pub(crate) fn is_leader(&self) -> bool {
        self.status() == Status::Leading && Instant::now() < self.valid_until()
    }

    pub(crate) fn status(&self) -> Status {
        *self.status.borrow()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    pub(crate) fn epoch(&self) -> Epoch {
        locked(&self.lease).epoch
    }

    /// Ends the term under `epoch` if it is still the current one; a later reason
    /// does not replace the first.
    pub(crate) fn depose(&self, epoch: Epoch, why: Deposed) {
        if self.epoch() == epoch {
            self.status.send_if_modified(|current| {
                let change = *current == Status::Leading;
                if change {
                    *current = Status::Deposed(why);
                }
                change
            });
        }
    }

    /// Stops for good; the first reason given is kept.
    pub(crate) fn stop(&self, why: Stop) {
        locked(&self.stop).get_or_insert(why);
        self.status.send_replace(Status::Stopped);
    }

    pub(crate) fn stop_reason(&self) -> Option<Stop> {
        locked(&self.stop).clone()
    }

    /// Checks the lease before serving; marks it lapsed if it ran out.
    pub(crate) fn check(&self) -> Result<(), CoordinatorError> {
        if self.status() == Status::Leading && Instant::now() >= self.valid_until() {
            tracing::warn!(
                partition = self.partition,
                epoch = self.epoch(),
                "lease lapsed"
            );
            self.depose(self.epoch(), Deposed::LeaseLapsed);
        }
        match self.status() {
            Status::Leading => Ok(()),
            other => Err(self.refusal(other)),
        }
    }

    /// The error for a request this coordinator does not serve now.
    pub(crate) fn refusal(&self, status: Status) -> CoordinatorError {
        let partition = self.partition;
        match status {
            Status::Deposed(why) => CoordinatorError::NotLeader {
                partition,
                epoch: self.epoch(),
                why,
            },
            Status::Leading => CoordinatorError::Stopped,
            Status::Stopped => match self.stop_reason() {
                None | Some(Stop::Shutdown) => CoordinatorError::Stopped,
                Some(Stop::Lost(why)) => CoordinatorError::NotLeader {
                    partition,
                    epoch: self.epoch(),
                    why,
                },
                Some(Stop::Panicked(poisoned)) => CoordinatorError::EnginePanicked {
                    partition,
                    poisoned,
                },
                Some(Stop::PoisonedLog(poisoned)) => CoordinatorError::PoisonedLog {
                    partition,
                    poisoned,
                },
                Some(Stop::Failed(reason)) => CoordinatorError::Halted { partition, reason },
            },
        }
    }

    /// The lease to hand back to the log when stepping down.
    pub(crate) fn lease(&self) -> keel_log::Leadership {
        locked(&self.lease).clone()
    }

    /// Whether a renewal is under way, to wait on before a write.
    pub(crate) fn renewing(&self) -> watch::Receiver<bool> {
        self.renewing.subscribe()
    }

    fn valid_until(&self) -> Instant {
        locked(&self.lease).valid_until
    }

    fn extend(&self, renewed: &keel_log::Leadership) {
        let mut lease = locked(&self.lease);
        if lease.epoch == renewed.epoch {
            lease.valid_until = lease.valid_until.max(renewed.valid_until);
        }
    }
}

/// How often a standby asks for the partition.
pub(crate) fn poll_interval(ttl: Duration) -> Duration {
    (ttl / 5).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// One attempt to take the partition: `Ok(None)` while another holder's lease is live.
pub(crate) async fn try_acquire<L: Log + 'static>(
    log: &Arc<L>,
    partition: Partition,
    holder: &str,
    ttl: Duration,
) -> Result<Option<keel_log::Leadership>, LogError> {
    let (call_log, name) = (log.clone(), holder.to_owned());
    let call = async move { call_log.acquire(partition, &name, ttl).await };
    let lost = |why| Err(LogError::storage(partition, why));
    match run_io(log.blocks(), call, lost).await {
        Ok(lease) => {
            tracing::info!(partition, epoch = lease.epoch, holder, "leading");
            Ok(Some(lease))
        }
        Err(LogError::LeaseHeld { holder: other, .. }) => {
            tracing::debug!(partition, holder, leader = other, "standing by");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Takes the partition, waiting while another holder's lease is live.
pub(crate) async fn acquire<L: Log + 'static>(
    log: &Arc<L>,
    partition: Partition,
    holder: &str,
    ttl: Duration,
) -> Result<keel_log::Leadership, CoordinatorError> {
    let mut waiting = false;
    loop {
        if let Some(lease) = try_acquire(log, partition, holder, ttl).await? {
            return Ok(lease);
        }
        if !waiting {
            tracing::info!(partition, holder, "standing by");
            waiting = true;
        }
        tokio::time::sleep(poll_interval(ttl)).await;
    }
}

/// Aborts the renewal task when dropped, so it never outlives its term.
pub(crate) struct Renewal(JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the lease every third of its TTL. A renewal that fails is retried until the
/// lease would run out; then, or as soon as the log says another epoch is current,
/// the term ends.
pub(crate) fn spawn_renewal<L: Log + 'static>(
    log: Arc<L>,
    mut lease: keel_log::Leadership,
    ttl: Duration,
    leadership: Arc<Leadership>,
) -> Renewal {
    let retry = (ttl / 10).max(Duration::from_millis(5));
    Renewal(tokio::spawn(async move {
        let mut wait = ttl / 3;
        loop {
            tokio::time::sleep(wait).await;
            let left = lease.valid_until.saturating_duration_since(Instant::now());
            leadership.renewing.send_replace(true);
            let (call_log, current) = (log.clone(), lease.clone());
            let call = async move { call_log.renew(&current, ttl).await };
            let lost = |why| Err(LogError::storage(lease.partition, why));
            let renewed = tokio::time::timeout(left, run_io(log.blocks(), call, lost)).await;
            leadership.renewing.send_replace(false);
            match renewed {
                Ok(Ok(renewed)) => {
                    leadership.extend(&renewed);
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
                    leadership.depose(lease.epoch, Deposed::Fenced { current });
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
                    leadership.depose(lease.epoch, Deposed::LeaseLapsed);
                    return;
                }
            }
        }
    }))
}
