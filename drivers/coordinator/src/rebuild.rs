//! After a failed append the engine is ahead of the log, and the log may or may not
//! hold the batch. The term goes on: the batch's callers learn their input may or may
//! not be recorded, the batch behind it that nothing of it was, and the engine is
//! rebuilt from the log (snapshot and replay) while the lease is kept and renewed.
//! While the log cannot be read every request is refused with what is wrong, and the
//! rebuild is retried with backoff; if the lease lapses meanwhile, the coordinator
//! stands by to take the partition back once the log answers again.
//!
//! A log that can be read but not written (a full disk) would fail every batch and
//! cost a rebuild each: after a rebuild, the commit machine refuses inputs without
//! applying them for a pause that doubles with every failure in a row (up to five
//! seconds), so the coordinator probes the log with one batch per pause.

use crate::engine_task::{EngineTask, Waited};
use crate::error::CoordinatorError;
use crate::fault::StoreFault;
use crate::pipeline::Serving;
use crate::term::{needs_operator, recover_engine, Term};
use crate::Ended;
use keel_log::{Log, LogError};
use std::time::Duration;

const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

impl<L: Log + 'static> EngineTask<L> {
    /// Rebuilds the engine from the log after a failed append (the machine has refused
    /// the failed batch and everything behind it), keeping the lease. Ends the term only if the lease is lost meanwhile,
    /// the coordinator stops, or the log needs an operator.
    pub(crate) async fn rebuild(
        &mut self,
        term: &mut Term,
        serving: &mut Serving,
        error: LogError,
    ) -> Option<Ended> {
        let partition = self.settings.partition;
        let fault = StoreFault::of(&error);
        let message = error.to_string();
        tracing::error!(partition, %fault, error = %error, "append failed; rebuilding the engine from the log");
        serving.offers = Default::default();
        self.shared.metrics().append_failures += 1;
        let mut retry = RETRY_MIN;
        loop {
            let (log, settings) = (self.log.clone(), self.settings.clone());
            let recovering = async move { recover_engine(log, &settings).await };
            let refusal = || CoordinatorError::Unavailable {
                partition,
                fault,
                message: format!("rebuilding from the log after a failed append: {message}"),
            };
            let failed = match self.wait_refusing(recovering, refusal, true).await {
                Waited::Finished(Ok(recovered)) => {
                    tracing::info!(partition, next = recovered.next, "rebuilt from the log");
                    term.rebuilt(recovered);
                    serving.pipeline.machine.rebuilt(term.next);
                    self.act(term, serving);
                    let mut metrics = self.shared.metrics();
                    metrics.log_end = term.next;
                    metrics.queued = term.engine.queued();
                    return None;
                }
                Waited::Finished(Err(e)) => e,
                Waited::StatusChanged => return Some(self.leave(term, serving).await),
                Waited::Shutdown(done) => return Some(self.shut_down(term, done).await),
            };
            if let Some(stop) = needs_operator(&failed) {
                tracing::error!(partition, error = %failed, "the log cannot be recovered; stopping");
                self.shared.leadership.stop(stop);
                return Some(Ended::Done);
            }
            tracing::warn!(partition, error = %failed, "rebuilding from the log failed; retrying");
            let refusal = || CoordinatorError::Unavailable {
                partition,
                fault: StoreFault::of_coordinator(&failed),
                message: format!("the log cannot be read: {failed}"),
            };
            match self
                .wait_refusing(tokio::time::sleep(retry), refusal, true)
                .await
            {
                Waited::Finished(()) => {}
                Waited::StatusChanged => return Some(self.leave(term, serving).await),
                Waited::Shutdown(done) => return Some(self.shut_down(term, done).await),
            }
            retry = (retry * 2).min(RETRY_MAX);
        }
    }
}
