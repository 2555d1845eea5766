//! Frames a handler emits to its task's output stream (`Task::emit`), sent beside the
//! worker machine (`side.rs`) until answered. Each emit names its position among the
//! attempt's frames, so the coordinator appends a resent emit's frames once.

use crate::convert::fence_to_proto;
use crate::proto::{self, reply, worker_command::Command};
use keel_engine::Fence;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Frames the coordinator appended (or had appended: `duplicate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emitted {
    /// How many frames this attempt has appended in all.
    pub next: u64,
    /// Frames the task's stream mode let go to keep within its bound.
    pub dropped: u64,
    /// Every frame sent had been appended before.
    pub duplicate: bool,
}

/// Why frames were not appended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// The coordinator refused them: `reason` is the stable code (`stream_over_limit`,
    /// `limit_reached`, or a fencing one such as `stale_fence` when the attempt is no
    /// longer this worker's).
    #[error("{message}")]
    Refused {
        /// The stable rejection code.
        reason: String,
        /// The coordinator's text.
        message: String,
    },
    /// The worker stopped before the coordinator answered.
    #[error("the worker stopped before the frames were answered")]
    Stopped,
}

/// One emit from a handler, with where its answer goes.
#[derive(Debug)]
pub(crate) struct EmitBatch {
    pub fence: Fence,
    pub from: u64,
    pub frames: Vec<Vec<u8>>,
    pub answer: oneshot::Sender<Result<Emitted, EmitError>>,
}

impl EmitBatch {
    pub(crate) fn command(&self, seq: u64) -> proto::WorkerCommand {
        proto::WorkerCommand {
            seq,
            command: Some(Command::Emit(proto::Emit {
                fence: Some(fence_to_proto(self.fence)),
                from: self.from,
                frames: self.frames.clone(),
            })),
        }
    }
}

pub(crate) fn outcome(result: Option<reply::Result>) -> Result<Emitted, EmitError> {
    match result {
        Some(reply::Result::Emitted(e)) => Ok(Emitted {
            next: e.next,
            dropped: e.dropped,
            duplicate: e.duplicate,
        }),
        Some(reply::Result::Refused(r)) => Err(EmitError::Refused {
            reason: r.reason,
            message: r.message,
        }),
        _ => Err(EmitError::Refused {
            reason: "invalid_argument".into(),
            message: "the coordinator answered an emit with another reply".into(),
        }),
    }
}

/// How long an emit may wait on a full `block` edge before the worker says why: a
/// consumer that never acknowledges, or cannot run, holds its producer until the job's
/// deadline, and without this the producer only looks hung.
pub(crate) const HELD_WARNING: Duration = Duration::from_secs(10);

/// Since when an emit has been refused as full, and whether that was said already.
#[derive(Default)]
pub(crate) struct Held {
    since: Option<Instant>,
    said: bool,
}

impl Held {
    /// The emit was refused as full at `now`: true the first time it has been held for
    /// `HELD_WARNING`, when the worker warns once.
    pub(crate) fn refused(&mut self, now: Instant) -> bool {
        let since = *self.since.get_or_insert(now);
        let due = !self.said && now.duration_since(since) >= HELD_WARNING;
        self.said |= due;
        due
    }

    /// The edge took frames: a later hold is timed afresh.
    pub(crate) fn moved(&mut self) {
        self.since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_is_said_once_after_the_warning_time_and_timed_afresh_after_a_move() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut held = Held::default();
        assert!(!held.refused(t0));
        assert!(!held.refused(t0 + HELD_WARNING - ms(1)));
        assert!(held.refused(t0 + HELD_WARNING));
        assert!(!held.refused(t0 + HELD_WARNING * 3), "said once");
        let mut held = Held::default();
        assert!(!held.refused(t0));
        held.moved();
        let again = t0 + HELD_WARNING;
        assert!(
            !held.refused(again),
            "the hold is timed from after the move"
        );
        assert!(held.refused(again + HELD_WARNING));
    }
}
