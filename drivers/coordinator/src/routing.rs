//! Where effects go once their batch is durable: each worker's session stream, and
//! every watcher of a job. Routes are registered from any thread; the engine task
//! delivers a whole batch under one lock of each table.
//!
//! Every route is bounded, and the engine task never waits for one. A worker session
//! that falls [`ROUTE_CAPACITY`] effects behind loses its route: its stream ends, the
//! session ends, and the worker reconnects and registers again; the effects it missed
//! are recovered by the engine's timers (an unanswered grant expires, a lease is
//! renewed or expires). A job watcher that falls behind is told how much it missed
//! (`RecvError::Lagged`). A slow consumer costs itself, never the coordinator.

use keel_engine::{Effect, JobId, Recipient, WorkerId};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{broadcast, mpsc};

/// Effects a job watcher may fall behind by before it misses some (and is told so by
/// `RecvError::Lagged`).
pub const WATCH_CAPACITY: usize = 1024;

/// Effects a worker session may fall behind by before its route is dropped.
pub const ROUTE_CAPACITY: usize = 8192;

#[derive(Default)]
pub(crate) struct Routes {
    workers: Mutex<BTreeMap<WorkerId, mpsc::Sender<Effect>>>,
    jobs: Mutex<BTreeMap<JobId, broadcast::Sender<Effect>>>,
}

/// What became of a batch's effects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// Worker effects with no live route; the engine's timers recover from their loss.
    pub dropped: u64,
    /// Worker routes dropped because their session fell too far behind.
    pub sessions_dropped: u64,
}

impl Routes {
    pub(crate) fn route_worker(&self, worker: WorkerId) -> mpsc::Receiver<Effect> {
        let (tx, rx) = mpsc::channel(ROUTE_CAPACITY);
        lock(&self.workers).insert(worker, tx);
        rx
    }

    /// A watch of `job`'s effects. Watches nobody holds any more are let go here: a
    /// job that gets no further effect (it finished, was forgotten, or never existed)
    /// would otherwise keep its channel for ever, one per job id a client ever asked.
    pub(crate) fn watch_job(&self, job: JobId) -> broadcast::Receiver<Effect> {
        let mut jobs = lock(&self.jobs);
        jobs.retain(|_, tx| tx.receiver_count() > 0);
        jobs.entry(job)
            .or_insert_with(|| broadcast::channel(WATCH_CAPACITY).0)
            .subscribe()
    }

    /// Sends each effect to its recipient, in order. A worker route whose receiver is
    /// gone is removed; a job's watchers are released (their stream ends) once the job
    /// finished or nobody listens any more.
    pub(crate) fn deliver(&self, effects: impl IntoIterator<Item = Effect>) -> Delivery {
        let mut delivery = Delivery::default();
        let mut workers = None;
        let mut jobs = None;
        for effect in effects {
            match effect.recipient() {
                Recipient::Worker(worker) => {
                    let workers = workers.get_or_insert_with(|| lock(&self.workers));
                    let sent = match workers.get(&worker) {
                        Some(tx) => tx.try_send(effect),
                        None => {
                            delivery.dropped += 1;
                            continue;
                        }
                    };
                    match sent {
                        Ok(()) => {}
                        Err(TrySendError::Closed(_)) => {
                            delivery.dropped += 1;
                            workers.remove(&worker);
                        }
                        Err(TrySendError::Full(_)) => {
                            tracing::warn!(
                                %worker,
                                behind = ROUTE_CAPACITY,
                                "a worker session fell behind; ending it so the worker reconnects"
                            );
                            delivery.dropped += 1;
                            delivery.sessions_dropped += 1;
                            workers.remove(&worker);
                        }
                    }
                }
                Recipient::Job(job) => {
                    let jobs = jobs.get_or_insert_with(|| lock(&self.jobs));
                    let Some(tx) = jobs.get(&job) else { continue };
                    let finished = matches!(effect, Effect::JobFinished { .. });
                    if tx.send(effect).is_err() || finished {
                        jobs.remove(&job);
                    }
                }
                Recipient::Operator => {
                    if let Effect::BudgetLimitReached {
                        owner,
                        budget,
                        dimension,
                        kind,
                        used,
                        limit,
                    } = &effect
                    {
                        tracing::warn!(%owner, budget, dimension, ?kind, used, limit, "a budget limit was reached");
                    }
                }
            }
        }
        delivery
    }

    /// Closes every route, ending every worker stream and job watch.
    pub(crate) fn close(&self) {
        lock(&self.workers).clear();
        lock(&self.jobs).clear();
    }
}

/// Routes hold no invariant a panicking holder could break halfway, so a poisoned lock
/// is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{JobOutcome, TaskId};

    fn drained(w: &str) -> Effect {
        Effect::WorkerDrained {
            worker: WorkerId::new(w),
        }
    }

    #[test]
    fn a_reconnect_replaces_the_route_and_unrouted_effects_are_dropped() {
        let routes = Routes::default();
        let mut old = routes.route_worker(WorkerId::new("w"));
        let mut new = routes.route_worker(WorkerId::new("w"));
        let d = routes.deliver([drained("w"), drained("nobody")]);
        assert_eq!(d.dropped, 1);
        assert_eq!(d.sessions_dropped, 0);
        assert_eq!(new.try_recv().ok(), Some(drained("w")));
        assert!(old.try_recv().is_err(), "the replaced route got an effect");
        drop(new);
        assert_eq!(routes.deliver([drained("w")]).dropped, 1);
        assert!(lock(&routes.workers).is_empty(), "a dead route was kept");
    }

    #[test]
    fn a_session_that_falls_behind_loses_its_route_and_nobody_waits() {
        let routes = Routes::default();
        let mut slow = routes.route_worker(WorkerId::new("slow"));
        let mut fast = routes.route_worker(WorkerId::new("fast"));
        let flood = (0..ROUTE_CAPACITY).map(|_| drained("slow"));
        assert_eq!(routes.deliver(flood), Delivery::default());
        let over = routes.deliver([drained("slow"), drained("fast")]);
        assert_eq!(over.sessions_dropped, 1);
        assert_eq!(over.dropped, 1);
        assert_eq!(fast.try_recv().ok(), Some(drained("fast")));
        // The slow session reads what was queued, then its stream ends.
        for _ in 0..ROUTE_CAPACITY {
            assert_eq!(slow.try_recv().ok(), Some(drained("slow")));
        }
        assert_eq!(
            slow.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        );
        assert!(!lock(&routes.workers).contains_key(&WorkerId::new("slow")));
    }

    #[test]
    fn job_watchers_see_every_effect_and_end_with_the_job() {
        let routes = Routes::default();
        let job = JobId::new(7);
        let mut a = routes.watch_job(job);
        let mut b = routes.watch_job(job);
        let resumed = Effect::TaskResumed {
            job,
            task: TaskId::new(1),
        };
        let finished = Effect::JobFinished {
            job,
            outcome: JobOutcome::Succeeded,
        };
        routes.deliver([resumed.clone(), finished.clone()]);
        for rx in [&mut a, &mut b] {
            assert_eq!(rx.try_recv().ok(), Some(resumed.clone()));
            assert_eq!(rx.try_recv().ok(), Some(finished.clone()));
            assert_eq!(rx.try_recv(), Err(broadcast::error::TryRecvError::Closed));
        }
        assert!(lock(&routes.jobs).is_empty());
    }

    #[test]
    fn watches_nobody_holds_are_let_go_when_another_is_opened() {
        let routes = Routes::default();
        let gone = routes.watch_job(JobId::new(1));
        let _held = routes.watch_job(JobId::new(2));
        drop(gone);
        // Job 1 never gets another effect; opening any watch lets its channel go.
        let _other = routes.watch_job(JobId::new(3));
        let open: Vec<JobId> = lock(&routes.jobs).keys().copied().collect();
        assert_eq!(open, [JobId::new(2), JobId::new(3)]);
    }
}
