//! The worker processes of a run: each simulated worker with its drifting clock and its
//! life (not started, up, paused, down). Messages and timers for a paused process wait
//! until it wakes; those for a dead one, or a timer of an earlier process, are dropped.

use crate::clock::DriftClock;
use crate::worker::{SimWorker, WorkerOutput, WorkerParams, WorkerTimer};
use keel_engine::{Accepted, Effect, InstanceId, Rejection, Time, WorkerId};
use std::collections::BTreeMap;

/// Something that happens at a worker.
#[derive(Clone, Debug)]
pub(crate) enum WorkerEvent {
    Reply(u64, Result<Accepted, Rejection>),
    Effect(Effect),
    /// A timer of process number `.0`.
    Timer(u64, WorkerTimer),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Life {
    NotStarted,
    Up,
    Paused,
    Down,
}

struct Slot {
    worker: SimWorker,
    life: Life,
    /// Events that arrived while paused, handled in order on waking.
    deferred: Vec<WorkerEvent>,
}

pub(crate) struct Fleet {
    slots: Vec<Slot>,
    /// Each worker's clock, by worker index.
    clocks: Vec<DriftClock>,
    by_name: BTreeMap<WorkerId, usize>,
}

impl Fleet {
    /// One process per worker, with its clock's drift in parts per million.
    pub(crate) fn new(workers: impl IntoIterator<Item = (WorkerParams, i64)>) -> Fleet {
        let (slots, clocks): (Vec<Slot>, Vec<DriftClock>) = workers
            .into_iter()
            .map(|(params, drift_ppm)| {
                let slot = Slot {
                    worker: SimWorker::new(params),
                    life: Life::NotStarted,
                    deferred: Vec::new(),
                };
                (slot, DriftClock::new(drift_ppm))
            })
            .unzip();
        let by_name = slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.worker.params.id.clone(), i))
            .collect();
        Fleet {
            slots,
            clocks,
            by_name,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The index of the worker named `name`, if there is one.
    pub(crate) fn index(&self, name: &WorkerId) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn life(&self, idx: usize) -> Life {
        self.slots[idx].life
    }

    pub(crate) fn worker(&self, idx: usize) -> &SimWorker {
        &self.slots[idx].worker
    }

    pub(crate) fn worker_mut(&mut self, idx: usize) -> &mut SimWorker {
        &mut self.slots[idx].worker
    }

    /// Every worker's clock, in worker order (the lease checker measures beliefs on them).
    pub(crate) fn clocks(&self) -> &[DriftClock] {
        &self.clocks
    }

    pub(crate) fn step_clock(&mut self, idx: usize, delta_ms: i64) {
        self.clocks[idx].step(delta_ms);
    }

    /// The worker's own clock reading at virtual time `now`.
    pub(crate) fn local(&self, idx: usize, now: Time) -> Time {
        self.clocks[idx].local(now)
    }

    /// Virtual time at which `local_ms` on the worker's clock, started now, ends.
    pub(crate) fn after_local(&self, idx: usize, now: Time, local_ms: u64) -> Time {
        self.clocks[idx].after_local(now, local_ms)
    }

    /// Who the worker is on the wire now: its id and instance.
    pub(crate) fn identity(&self, idx: usize) -> (WorkerId, InstanceId) {
        let w = &self.slots[idx].worker;
        (w.params.id.clone(), w.instance())
    }

    /// Starts a process (first start or restart) as a new instance.
    pub(crate) fn boot(&mut self, idx: usize, now: Time, out: &mut Vec<WorkerOutput>) {
        let local = self.local(idx, now);
        let slot = &mut self.slots[idx];
        slot.worker.boot(local, out);
        slot.life = Life::Up;
        slot.deferred.clear();
    }

    /// The process dies with everything it believed.
    pub(crate) fn kill(&mut self, idx: usize, out: &mut Vec<WorkerOutput>) {
        let slot = &mut self.slots[idx];
        slot.worker.forget(out);
        slot.life = Life::Down;
        slot.deferred.clear();
    }

    pub(crate) fn pause(&mut self, idx: usize) {
        self.slots[idx].life = Life::Paused;
    }

    /// Wakes a paused process; returns the events that waited for it: first the
    /// handlers that finished meanwhile, then the rest in order. A process waking from
    /// a long pause sees everything at once; its handlers' results come first, so it
    /// reports them before it notices that its leases are no longer trusted, as a
    /// zombie does (the coordinator's fencing must refuse those reports).
    pub(crate) fn wake(&mut self, idx: usize) -> Vec<WorkerEvent> {
        let slot = &mut self.slots[idx];
        if slot.life != Life::Paused {
            return Vec::new();
        }
        slot.life = Life::Up;
        let (mut done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut slot.deferred)
            .into_iter()
            .partition(|e| matches!(e, WorkerEvent::Timer(_, WorkerTimer::WorkDone(_))));
        done.extend(rest);
        done
    }

    /// Hands an event to a running process; a paused one keeps it for later.
    pub(crate) fn deliver(
        &mut self,
        idx: usize,
        now: Time,
        event: WorkerEvent,
        fails: &mut dyn FnMut(f64) -> bool,
        out: &mut Vec<WorkerOutput>,
    ) {
        let local = self.local(idx, now);
        let slot = &mut self.slots[idx];
        if let WorkerEvent::Timer(process, _) = &event {
            if *process != slot.worker.process {
                return; // a timer of a process that no longer exists
            }
        }
        match slot.life {
            Life::Up => {}
            Life::Paused => return slot.deferred.push(event),
            Life::Down | Life::NotStarted => return,
        }
        let worker = &mut slot.worker;
        match &event {
            WorkerEvent::Reply(request, reply) => worker.on_reply(local, *request, reply, out),
            WorkerEvent::Effect(e) => worker.on_effect(local, e, out),
            WorkerEvent::Timer(_, t) => worker.on_timer(local, *t, fails, out),
        }
    }
}
