//! Between terms: the coordinator lost its lease (it lapsed while the log was out of
//! reach or the process was paused, or another coordinator took over) and waits to
//! take the partition back exactly as a standby would: it asks for it every poll
//! interval while another holder's lease is live, backs off while the log cannot be
//! reached, and recovers the engine once it holds the partition again. Meanwhile every
//! request is refused with why it does not lead.

use crate::engine_task::{Ended, EngineTask, Settings, Waited};
use crate::error::CoordinatorError;
use crate::leadership::{poll_interval, try_acquire, Leadership, Stop};
use crate::term::{needs_operator, open_term, Term};
use keel_log::Log;
use std::sync::Arc;
use std::time::Duration;

const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// One try: the term, or None while another holder's lease is live.
async fn attempt<L: Log + 'static>(
    log: Arc<L>,
    settings: Settings,
    leadership: Arc<Leadership>,
) -> Result<Option<Term>, CoordinatorError> {
    let ttl = settings.lease_ttl;
    let lease = try_acquire(&log, settings.partition, &settings.holder, ttl).await?;
    match lease {
        Some(lease) => open_term(&log, &settings, &leadership, lease)
            .await
            .map(Some),
        None => Ok(None),
    }
}

impl<L: Log + 'static> EngineTask<L> {
    /// Waits until this coordinator holds the partition again and its engine is
    /// recovered; `Err` if it stops meanwhile.
    pub(crate) async fn stand_by(&mut self) -> Result<Term, Ended> {
        let leadership = self.shared.leadership.clone();
        let poll = poll_interval(self.settings.lease_ttl);
        let mut backoff = poll;
        let mut failures = 0u32;
        loop {
            let trying = attempt(self.log.clone(), self.settings.clone(), leadership.clone());
            let refusal = || leadership.refusal(leadership.status());
            let wait = match self.wait_refusing(trying, refusal, false).await {
                Waited::Finished(Ok(Some(term))) => {
                    if failures > 0 {
                        tracing::info!(
                            partition = self.settings.partition,
                            "the log answers again; leading"
                        );
                    }
                    return Ok(term);
                }
                Waited::Finished(Ok(None)) => {
                    backoff = poll;
                    poll
                }
                Waited::Finished(Err(e)) => {
                    if let Some(stop) = needs_operator(&e) {
                        tracing::error!(error = %e, "the log cannot be recovered; stopping");
                        leadership.stop(stop);
                        return Err(Ended::Done);
                    }
                    // The first failure and then every so often, not every retry.
                    if failures.is_power_of_two() || failures == 0 {
                        tracing::warn!(error = %e, "cannot take the partition back yet; retrying");
                    }
                    failures += 1;
                    let wait = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    wait
                }
                Waited::StatusChanged => continue,
                Waited::Shutdown(done) => return Err(self.stop_standing_by(done)),
            };
            match self
                .wait_refusing(tokio::time::sleep(wait), refusal, false)
                .await
            {
                Waited::Finished(()) | Waited::StatusChanged => {}
                Waited::Shutdown(done) => return Err(self.stop_standing_by(done)),
            }
        }
    }

    /// Shut down while standing by: there is no partition to hand back.
    fn stop_standing_by(
        &self,
        done: Option<tokio::sync::oneshot::Sender<Result<(), CoordinatorError>>>,
    ) -> Ended {
        self.shared.leadership.stop(Stop::Shutdown);
        if let Some(done) = done {
            let _ = done.send(Ok(()));
        }
        Ended::Done
    }
}
