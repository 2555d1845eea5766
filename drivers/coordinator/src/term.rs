//! One term of leadership: the engine recovered under a freshly acquired lease, served
//! until the lease is lost. The engine task sleeps until an input arrives, the
//! engine's next timer is due, an append or snapshot finishes, a renewal ends, or
//! leadership changes; then it drains up to `max_batch` inputs, applies them and
//! group-commits them, releasing their outputs once durable (`pipeline`). A failed
//! append does not end the term: the engine is rebuilt from the log (`rebuild`).

use crate::batch::{Request, Waiter};
use crate::engine_task::{Ended, EngineTask, Settings};
use crate::error::{CoordinatorError, Deposed};
use crate::io::run_io;
use crate::leadership::{spawn_renewal, Leadership, Renewal, Status, Stop};
use crate::pipeline::{Serving, Wake};
use crate::recovery;
use keel_engine::{Engine, Input};
use keel_log::{Epoch, Log, LogError, Offset, Recovered};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The engine of a term and where its log stands.
pub(crate) struct Term {
    pub engine: Engine,
    pub epoch: Epoch,
    /// Where the next append goes: every entry before it is durable.
    pub next: Offset,
    /// The log end at which the next snapshot is due.
    pub snapshot_due: Offset,
    /// Held so the lease is renewed exactly as long as the term lasts.
    pub _renewal: Renewal,
}

impl Term {
    /// The engine rebuilt from the log replaces the one that ran ahead of it.
    pub(crate) fn rebuilt(&mut self, recovered: Recovered) {
        self.engine = recovered.engine;
        self.next = recovered.next;
    }
}

/// Serves `lease`: renews it from now on and recovers the engine. If recovery fails the
/// partition is handed back and the error returned.
pub(crate) async fn open_term<L: Log + 'static>(
    log: &Arc<L>,
    settings: &Settings,
    leadership: &Arc<Leadership>,
    lease: keel_log::Leadership,
) -> Result<Term, CoordinatorError> {
    leadership.adopt(&lease);
    let renewal = spawn_renewal(
        log.clone(),
        lease.clone(),
        settings.lease_ttl,
        leadership.clone(),
    );
    let partition = settings.partition;
    match recover_engine(log.clone(), settings).await {
        Ok(recovered) => {
            tracing::info!(
                partition,
                epoch = lease.epoch,
                next = recovered.next,
                snapshot = ?recovered.snapshot,
                replayed = recovered.replayed,
                "recovered"
            );
            let snapshot_from = recovered.snapshot.unwrap_or(0);
            Ok(Term {
                engine: recovered.engine,
                epoch: lease.epoch,
                next: recovered.next,
                snapshot_due: snapshot_from.saturating_add(settings.snapshot_every),
                _renewal: renewal,
            })
        }
        Err(e) => {
            drop(renewal);
            step_down(log, &lease).await;
            Err(e)
        }
    }
}

/// Recovers the engine off the runtime's worker threads.
pub(crate) async fn recover_engine<L: Log + 'static>(
    log: Arc<L>,
    settings: &Settings,
) -> Result<Recovered, CoordinatorError> {
    let blocks = log.blocks();
    let (partition, config, prepare) = (
        settings.partition,
        settings.engine.clone(),
        settings.prepare_engine,
    );
    let recover = async move {
        let skip = BTreeSet::new();
        recovery::recover_with(&*log, partition, config, &skip, prepare).await
    };
    let lost = |why| Err(LogError::storage(partition, why).into());
    run_io(blocks, recover, lost).await
}

/// Hands the partition back, so nobody waits for the lease to lapse.
pub(crate) async fn step_down<L: Log + 'static>(
    log: &Arc<L>,
    lease: &keel_log::Leadership,
) -> bool {
    let (call_log, held) = (log.clone(), lease.clone());
    let call = async move { call_log.step_down(&held).await };
    let lost = |why| Err(LogError::storage(lease.partition, why));
    match run_io(log.blocks(), call, lost).await {
        Ok(()) => {
            tracing::info!(partition = lease.partition, "stepped down");
            true
        }
        Err(e) => {
            tracing::warn!(partition = lease.partition, error = %e, "step-down failed");
            false
        }
    }
}

/// Whether a failure to recover needs an operator rather than waiting, and why.
pub(crate) fn needs_operator(error: &CoordinatorError) -> Option<Stop> {
    match error {
        CoordinatorError::PoisonedLog { poisoned, .. } => Some(Stop::PoisonedLog(poisoned.clone())),
        CoordinatorError::Log(LogError::Corrupt { .. }) => Some(Stop::Failed(error.to_string())),
        CoordinatorError::Recover(keel_log::RecoverError::Log(e)) if !e.retryable() => {
            Some(Stop::Failed(error.to_string()))
        }
        CoordinatorError::Recover(keel_log::RecoverError::Log(_)) => None,
        CoordinatorError::Recover(_) => Some(Stop::Failed(error.to_string())),
        _ => None,
    }
}

impl<L: Log + 'static> EngineTask<L> {
    /// Serves a term until its lease is lost or the coordinator stops.
    pub(crate) async fn serve(&mut self, mut term: Term) -> Ended {
        let leadership = self.shared.leadership.clone();
        leadership.lead();
        {
            let mut metrics = self.shared.metrics();
            metrics.leader = true;
            metrics.epoch = term.epoch;
            metrics.terms += 1;
            metrics.log_end = term.next;
            metrics.queued = term.engine.queued();
        }
        let mut serving = Serving::new(&leadership, &term, self.settings.max_batch);
        if let Some(ended) = self.configure(&mut term, &mut serving).await {
            self.shared.metrics().leader = false;
            self.shared.routes.close();
            return ended;
        }
        let ended = loop {
            if let Some(ended) = self.housekeep(&mut term, &mut serving).await {
                break ended;
            }
            let wake = self.next_wake(&term, &mut serving).await;
            if let Some(ended) = self.on_wake(&mut term, &mut serving, wake).await {
                break ended;
            }
        };
        self.shared.metrics().leader = false;
        // Sessions end so their workers reconnect to whoever leads next.
        self.shared.routes.close();
        ended
    }

    /// Applies this coordinator's engine configuration as the term's first input when
    /// the log's differs (a restart with new flags, a takeover by a server configured
    /// otherwise): the engine's configuration lives in its state and snapshots, so only
    /// a logged change reaches a replay that starts from a snapshot.
    async fn configure(&mut self, term: &mut Term, serving: &mut Serving) -> Option<Ended> {
        let wanted = &self.settings.engine;
        if term.engine.config() == wanted {
            return None;
        }
        tracing::info!(
            partition = self.settings.partition,
            "the engine configuration differs from the log's; applying this server's"
        );
        let (reply, answered) = tokio::sync::oneshot::channel();
        let input = Input::Configure(Box::new(wanted.clone()));
        serving.pipeline.machine.push(Request::Input {
            input,
            waiter: Waiter::One(reply),
        });
        let ended = self.apply(term, serving).await;
        tokio::spawn(async move {
            match answered.await {
                Ok(Ok(Some(Err(refusal)))) => {
                    tracing::error!(%refusal, "the engine refused this server's configuration")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "the new configuration was not applied"),
                _ => {}
            }
        });
        ended
    }

    /// Leaves the term: answers what is under way, then reports why it ended.
    pub(crate) async fn leave(&mut self, term: &mut Term, serving: &mut Serving) -> Ended {
        self.settle(term, serving).await;
        match self.shared.leadership.status() {
            Status::Deposed(why) => Ended::Lost(why),
            Status::Leading => Ended::Lost(Deposed::LeaseLapsed),
            Status::Stopped => Ended::Done,
        }
    }

    /// Shuts down once nothing is under way: steps down and answers the caller.
    pub(crate) async fn shut_down(
        &mut self,
        term: &Term,
        done: Option<tokio::sync::oneshot::Sender<Result<(), CoordinatorError>>>,
    ) -> Ended {
        let leadership = self.shared.leadership.clone();
        let lease = leadership.lease();
        let answer = match done {
            Some(done) => done,
            // Every handle is gone: nobody can be answered, so stop without stepping
            // down, as a crash would; a standby takes over when the lease lapses.
            None => {
                leadership.stop(Stop::Shutdown);
                return Ended::Done;
            }
        };
        let result = if leadership.status() == Status::Leading && lease.epoch == term.epoch {
            leadership.stop(Stop::Shutdown);
            if step_down(&self.log, &lease).await {
                Ok(())
            } else {
                Err(CoordinatorError::Log(LogError::storage(
                    lease.partition,
                    "the step-down failed; a standby waits for the lease to lapse",
                )))
            }
        } else {
            let refusal = leadership.refusal(leadership.status());
            leadership.stop(Stop::Shutdown);
            match refusal {
                e @ CoordinatorError::NotLeader { .. } => Err(e),
                _ => Ok(()),
            }
        };
        let _ = answer.send(result);
        Ended::Done
    }

    /// What woke the engine task, after its inputs were taken.
    async fn on_wake(
        &mut self,
        term: &mut Term,
        serving: &mut Serving,
        wake: Wake,
    ) -> Option<Ended> {
        match wake {
            Wake::LeadershipChanged => {
                if self.shared.leadership.status() != Status::Leading {
                    return Some(self.leave(term, serving).await);
                }
                None
            }
            Wake::Unpaused => {
                serving.pipeline.machine.unpause();
                serving.paused_until = None;
                None
            }
            Wake::Renewal | Wake::Timer(None) => None,
            Wake::Durable(done) => self.durable(term, serving, done).await,
            Wake::Snapshot(stored) => self.snapshot_stored(term, stored),
            Wake::Command(None) => {
                serving.shutdown = Some(None);
                None
            }
            Wake::Command(Some(command)) => {
                let machine = &mut serving.pipeline.machine;
                crate::pipeline::take(command, machine, &mut serving.shutdown);
                self.apply(term, serving).await
            }
            Wake::Timer(Some(at)) => {
                if self.clock.now_ms() < at {
                    return None;
                }
                serving.last_tick = Some(self.clock.now_ms().max(term.engine.now()));
                serving.pipeline.machine.tick();
                self.apply(term, serving).await
            }
        }
    }
}
