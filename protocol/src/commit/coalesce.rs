//! Heartbeats shed before they reach the log. A heartbeat only moves its worker's
//! liveness deadline, so a heartbeat from a worker whose heartbeat was applied less
//! than a window ago is answered as accepted without being applied or logged: replay
//! stays exact (the engine never saw it) and the deadline lags by less than the window.
//! A flood of heartbeats from one session then costs the log one entry per window.
//!
//! The window is a tenth of the liveness timeout (at most a second), well below the
//! SDK's heartbeat period (a third of it), so an honest worker's heartbeats are all
//! applied. A worker's entry is dropped when any other command of it is applied, so a
//! registration of a new instance, a deregistration or a refusal is never masked, and
//! a worker cannot be declared lost within a window of an applied heartbeat.

use keel_engine::{Accepted, Input, InstanceId, Rejection, Time, WorkerCommand, WorkerId};
use std::collections::BTreeMap;

/// The engine's answer to one input (None for a tick).
pub type Answer = Option<Result<Accepted, Rejection>>;

/// The longest window, whatever the liveness timeout.
const MAX_WINDOW_MS: u64 = 1_000;

/// Who sent a worker command, and whether it was a heartbeat.
pub struct Sender {
    /// The worker that sent it.
    pub worker: WorkerId,
    /// The sending instance; a heartbeat of another instance is never absorbed.
    pub instance: InstanceId,
    /// It was a heartbeat.
    pub heartbeat: bool,
}

impl Sender {
    /// The sender of a worker command; `None` for ticks and client commands.
    pub fn of(input: &Input) -> Option<Sender> {
        match input {
            Input::Worker {
                worker,
                instance,
                command,
            } => Some(Sender {
                worker: worker.clone(),
                instance: *instance,
                heartbeat: matches!(command, WorkerCommand::Heartbeat),
            }),
            _ => None,
        }
    }
}

/// Remembers each worker's last applied heartbeat to decide which to absorb.
pub struct Coalescer {
    window_ms: u64,
    /// Per worker: the instance and engine time of its last applied, accepted heartbeat.
    last: BTreeMap<WorkerId, (InstanceId, Time)>,
    next_prune: Time,
}

impl Coalescer {
    /// A coalescer whose window is a tenth of `liveness_timeout_ms`, at most a second.
    pub fn new(liveness_timeout_ms: u64) -> Coalescer {
        Coalescer {
            window_ms: (liveness_timeout_ms / 10).min(MAX_WINDOW_MS),
            last: BTreeMap::new(),
            next_prune: 0,
        }
    }

    /// Whether `input` is a heartbeat that may be answered without applying it.
    pub fn absorbs(&self, input: &Input, now: Time) -> bool {
        match input {
            Input::Worker {
                worker,
                instance,
                command: WorkerCommand::Heartbeat,
            } => self.last.get(worker).is_some_and(|(seen, at)| {
                seen == instance && now < at.saturating_add(self.window_ms)
            }),
            _ => false,
        }
    }

    /// Notes a worker's command the engine applied at `now` and what it answered.
    pub fn applied(&mut self, sender: &Sender, now: Time, answer: &Answer) {
        match answer {
            Some(Ok(_)) if sender.heartbeat && self.window_ms > 0 => {
                self.last
                    .insert(sender.worker.clone(), (sender.instance, now));
            }
            _ => {
                self.last.remove(&sender.worker);
            }
        }
        if now >= self.next_prune {
            let window = self.window_ms;
            self.last
                .retain(|_, (_, at)| now < at.saturating_add(window));
            self.next_prune = now.saturating_add(window.max(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(worker: &str, instance: u64) -> Input {
        Input::worker(
            &WorkerId::new(worker),
            InstanceId::new(instance),
            WorkerCommand::Heartbeat,
        )
    }

    fn sent(input: &Input) -> Sender {
        Sender::of(input).expect("a worker command")
    }

    const OK: Answer = Some(Ok(Accepted::Ok));

    #[test]
    fn only_repeats_within_the_window_from_the_same_instance_are_absorbed() {
        let mut c = Coalescer::new(15_000);
        assert!(!c.absorbs(&beat("w", 1), 100), "nothing applied yet");
        c.applied(&sent(&beat("w", 1)), 100, &OK);
        assert!(c.absorbs(&beat("w", 1), 100));
        assert!(c.absorbs(&beat("w", 1), 1_099));
        assert!(!c.absorbs(&beat("w", 1), 1_100), "the window is 1 s");
        assert!(!c.absorbs(&beat("w", 2), 200), "another instance");
        assert!(!c.absorbs(&beat("v", 1), 200), "another worker");

        let request = Input::worker(
            &WorkerId::new("w"),
            InstanceId::new(1),
            WorkerCommand::RequestWork { credits: 1 },
        );
        c.applied(&sent(&request), 300, &OK);
        assert!(!c.absorbs(&beat("w", 1), 301), "any other command resets");

        let refused: Answer = Some(Err(Rejection::UnknownWorker {
            worker: WorkerId::new("w"),
        }));
        c.applied(&sent(&beat("w", 1)), 400, &refused);
        assert!(
            !c.absorbs(&beat("w", 1), 401),
            "a refused heartbeat is not kept"
        );
    }

    #[test]
    fn the_window_follows_the_liveness_timeout_and_old_entries_are_pruned() {
        let mut c = Coalescer::new(2_000);
        c.applied(&sent(&beat("w", 1)), 0, &OK);
        assert!(c.absorbs(&beat("w", 1), 199));
        assert!(!c.absorbs(&beat("w", 1), 200));
        c.applied(&sent(&beat("v", 1)), 500, &OK);
        assert_eq!(c.last.len(), 1, "w's entry outlived its window");
        let mut off = Coalescer::new(5);
        off.applied(&sent(&beat("w", 1)), 0, &OK);
        assert!(
            !off.absorbs(&beat("w", 1), 0),
            "a zero window absorbs nothing"
        );
    }
}
