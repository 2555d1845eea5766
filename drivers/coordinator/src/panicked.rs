//! The engine panicked applying an input. Its state may be half-changed, so it is
//! discarded and the coordinator stops for good, at once, naming the input: a process
//! that lingers answering UNAVAILABLE is never restarted by a supervisor, and one that
//! restarts into the same input loops.
//!
//! The batch that held the input is appended (the inputs before it, then it) once the
//! batch ahead of it is durable, so the log holds exactly what the engine saw and
//! recovery meets the same input at the same offset: it refuses to start, naming it,
//! until an operator skips the input or cancels its job offline (`keel admin`). A
//! panic on a timer tick, or on an input that only completes what the state set up,
//! would otherwise come back on every restart without a trace in the log. The
//! partition is then handed back, so the operator's tool need not wait for the lease.

use crate::batch::Applied;
use crate::engine_task::{Ended, EngineTask};
use crate::error::CoordinatorError;
use crate::leadership::Stop;
use crate::pipeline::Serving;
use crate::poison::{Met, Poisoned};
use crate::recovery::before_entry;
use crate::term::{step_down, Term};
use keel_log::Log;

impl<L: Log + 'static> EngineTask<L> {
    pub(crate) async fn stop_on_panic(
        &mut self,
        term: &mut Term,
        serving: &mut Serving,
        applied: Applied,
    ) -> Ended {
        let leadership = self.shared.leadership.clone();
        let partition = self.settings.partition;
        // Nothing is parked behind the batch: a batch is applied only when none waits.
        let mut ahead_durable = true;
        if let Some(mut flight) = serving.pipeline.appending.take() {
            let done = flight.durable().await;
            ahead_durable = done.is_ok();
            match done {
                Ok(appended) => self.release(term, serving, flight, appended),
                Err(e) => flight.applied.fail(|| CoordinatorError::NotDurable {
                    partition,
                    fault: crate::fault::StoreFault::of(&e),
                    code: e.code(),
                    message: e.to_string(),
                }),
            }
        }
        let mut recorded = false;
        let mut applied = applied;
        if ahead_durable && leadership.check().is_ok() {
            let mut flight = self.start_append(term, applied);
            recorded = flight.durable().await.is_ok();
            applied = flight.applied;
        }
        let mut poisoned = match applied.poisoned.take() {
            Some(poisoned) => poisoned,
            None => return Ended::Done,
        };
        poisoned.met = Met::Serving { recorded };
        if recorded {
            self.explain(&mut poisoned).await;
        }
        tracing::error!(partition, offset = poisoned.offset, %poisoned, "the engine panicked; stopping");
        let answer = poisoned.clone();
        applied.fail(|| CoordinatorError::EnginePanicked {
            partition,
            poisoned: answer.clone(),
        });
        leadership.stop(Stop::Panicked(poisoned));
        step_down(&self.log, &leadership.lease()).await;
        Ended::Done
    }

    /// Names what the recorded input concerns (its job; for a tick, the timers it was
    /// firing) from the state just before it, replayed from the log: the engine that
    /// panicked may be half-changed. Bounded, since the process is about to stop.
    async fn explain(&self, poisoned: &mut Poisoned) {
        let replayed = before_entry(
            &*self.log,
            self.settings.partition,
            self.settings.engine.clone(),
            poisoned.offset,
            self.settings.prepare_engine,
        );
        match tokio::time::timeout(EXPLAIN_WITHIN, replayed).await {
            Ok(Some((before, entry))) => poisoned.explain(&before, entry.now, &entry.input),
            _ => tracing::warn!(
                offset = poisoned.offset,
                "could not replay the log up to the input that panicked the engine to name what it concerns"
            ),
        }
    }
}

/// How long naming a panicked input may delay stopping.
const EXPLAIN_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);
