//! The world's side of the worker processes: it drives a worker with an event and
//! carries out what the worker asks for (messages in one frame, timers on its own
//! clock, beliefs for the checker).

use super::{Event, World};
use crate::coordinator::Origin;
use crate::fleet::{Fleet, WorkerEvent};
use crate::network::Link;
use crate::rng::SimRng;
use crate::worker::WorkerOutput;
use keel_engine::{EdgeRead, Fence, Input, Time, WorkerCommand};

impl World<'_> {
    /// Lets `act` drive worker `idx` with the output buffer, then carries out what the
    /// worker asked for.
    pub(super) fn drive(
        &mut self,
        idx: usize,
        act: impl FnOnce(&mut Fleet, Time, &mut SimRng, &mut Vec<WorkerOutput>),
    ) {
        let mut outputs = std::mem::take(&mut self.outputs);
        act(&mut self.fleet, self.now, &mut self.rng, &mut outputs);
        self.route_worker(idx, &mut outputs);
        self.outputs = outputs;
    }

    pub(super) fn at_worker(&mut self, idx: usize, event: WorkerEvent) {
        self.drive(idx, |fleet, now, rng, out| {
            let mut fails = |p: f64| rng.chance(p);
            fleet.deliver(idx, now, event, &mut fails, out)
        });
    }

    /// Carries out what a worker asked for: messages, timers, beliefs for the checker.
    pub(super) fn route_worker(&mut self, idx: usize, outputs: &mut Vec<WorkerOutput>) {
        let (id, instance) = self.fleet.identity(idx);
        let process = self.fleet.worker(idx).process;
        let mut frame = Vec::new();
        for out in outputs.drain(..) {
            match out {
                WorkerOutput::Send(req, command) => {
                    let input = Input::worker(&id, instance, command);
                    frame.push((Origin::Worker { idx, req }, input));
                }
                WorkerOutput::Timer(local_ms, timer) => {
                    let at = self.fleet.after_local(idx, self.now, local_ms);
                    let event = WorkerEvent::Timer(process, timer);
                    self.queue.push(at, Event::ToWorker(idx, event));
                }
                WorkerOutput::Belief(task, held) => {
                    let clocks = self.fleet.clocks();
                    self.checker.belief(self.now, idx, task, held, clocks)
                }
                WorkerOutput::Read(fence, froms) => {
                    for (from, cursor) in self.read_edges(fence, &froms) {
                        let ack = WorkerCommand::Ack {
                            fence,
                            from,
                            cursor,
                        };
                        let input = Input::worker(&id, instance, ack);
                        frame.push((Origin::Worker { idx, req: 0 }, input));
                    }
                }
            }
        }
        // What the worker says in one step goes out in one frame, as the SDK sends it:
        // one fate on the network, and one group in the coordinator's pipeline.
        match &frame[..] {
            [] => {}
            [(origin, input)] => {
                let origin = *origin;
                self.send(Link::Up(idx), || {
                    Event::ToCoordinator(input.clone(), origin)
                });
            }
            _ => self.send(Link::Up(idx), || Event::FrameToCoordinator(frame.clone())),
        }
    }

    /// A consumer's read of its edges from `froms`, as its SDK would make it: on the
    /// coordinator while it is up, each page checked as read. Returns the cursors to
    /// acknowledge, for the edges whose cursor moved.
    fn read_edges(&mut self, fence: Fence, froms: &[String]) -> Vec<(String, u64)> {
        if !self.coordinator.up {
            return Vec::new();
        }
        let mut acks = Vec::new();
        for from in froms {
            let before = self.checker.edges.cursor(fence, from);
            let read = EdgeRead {
                from: before,
                limit: u32::MAX,
            };
            let engine = &self.coordinator.engine;
            let Ok(page) = engine.read_edge(fence.task, from, read) else {
                continue;
            };
            if let Err((check, detail)) = self.checker.edges.read(engine, fence, from, &page) {
                self.checker.fail(self.now, check, detail);
            }
            if before.is_none_or(|b| page.next > b) {
                acks.push((from.clone(), page.next));
            }
        }
        acks
    }

    pub(super) fn boot(&mut self, idx: usize) {
        self.drive(idx, |fleet, now, _, out| fleet.boot(idx, now, out));
    }

    pub(super) fn kill(&mut self, idx: usize) {
        self.drive(idx, |fleet, _, _, out| fleet.kill(idx, out));
    }

    pub(super) fn wake(&mut self, idx: usize) {
        for event in self.fleet.wake(idx) {
            self.at_worker(idx, event);
        }
    }
}
