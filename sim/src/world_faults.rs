//! The fault side of a run: scheduled faults starting and ending, scripted worker
//! steps, coordinator recovery and the heal that begins the liveness phase. A child of
//! `world`, so it works on the run's own state.

use super::{Event, World};
use crate::coordinator::{Origin, Recovery};
use crate::faults::{self, Action, Plan};
use crate::fleet::Life;
use crate::network::Link;
use crate::script::{self, Performed};
use keel_engine::{Input, WorkerId};

impl World<'_> {
    pub(super) fn mark(&mut self, who: &str, what: String) {
        self.trace.fault(self.now, who, what.clone());
        self.marks.push((self.now, who.to_string(), what));
    }

    /// A scheduled fault starts or ends; after healing, none does.
    pub(super) fn fault(&mut self, i: usize, starts: bool) {
        if self.healed {
            return;
        }
        let f = &self.scenario.faults[i];
        let plan = if starts {
            faults::start(f, &self.fleet, self.coordinator.up)
        } else {
            faults::end(f, &self.fleet)
        };
        self.carry_out(plan, i);
    }

    fn carry_out(&mut self, plan: Plan, fault: usize) {
        for action in plan.actions {
            self.act(action);
        }
        if let Some((who, what)) = plan.mark {
            self.mark(&who, what);
        }
        if let Some(after) = plan.end_after_ms {
            let at = self.now.saturating_add(after);
            self.queue.push(at, Event::FaultEnd(fault));
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::KillWorker(idx) => self.kill(idx),
            Action::RestartWorker(idx) => self.boot(idx),
            Action::PauseWorker(idx) => self.fleet.pause(idx),
            Action::WakeWorker(idx) => self.wake(idx),
            Action::Cut(idx, direction) => self.network.cut(idx, direction),
            Action::Mend(idx, direction) => self.network.mend(idx, direction),
            Action::StepClock(idx, delta) => self.fleet.step_clock(idx, delta),
            Action::CrashCoordinator => self.coordinator.crash(),
            Action::RecoverCoordinator => self.recover_coordinator(),
            Action::ArmStorage { fault, down_ms } => {
                if self.coordinator.arm(fault) {
                    self.storage_downtime_ms = down_ms;
                }
            }
            Action::FsyncDelay(ms) => self.coordinator.set_fsync_ms(ms),
            Action::CorruptStorage => {
                if let Some(place) = self.coordinator.corrupt(&mut self.rng) {
                    self.mark("storage", format!("{place} flipped"));
                }
            }
            Action::Cancel(job) => {
                let sends = self.client.cancel(&job);
                self.client_send(sends);
            }
        }
    }

    /// A script step: the worker does what the scenario says, if it is running.
    pub(super) fn script(&mut self, i: usize) {
        let scenario = self.scenario;
        let step = &scenario.script[i];
        let name = step.worker.get_ref();
        let Some(idx) = self.fleet.index(&WorkerId::new(name.as_str())) else {
            return;
        };
        if self.fleet.life(idx) != Life::Up {
            let what = format!("script {} skipped: not running", step.action.name());
            return self.mark(name, what);
        }
        let task = match (&step.job, &step.task) {
            (Some(job), Some(key)) => self
                .checker
                .shadow
                .task_by_key(job.get_ref(), key.get_ref()),
            _ => None,
        };
        let mut performed = Err(String::new());
        self.drive(idx, |fleet, now, _, out| {
            let local = fleet.local(idx, now);
            performed = script::perform(step, fleet.worker_mut(idx), local, task, out);
        });
        let what = match performed {
            Ok(Performed::Acted(text)) => text,
            Ok(Performed::SendAs(instance, command, text)) => {
                let (id, _) = self.fleet.identity(idx);
                let input = Input::worker(&id, instance, command);
                // Request 0 is never pending, so the worker ignores the reply.
                let origin = Origin::Worker { idx, req: 0 };
                self.send(Link::Up(idx), || {
                    Event::ToCoordinator(input.clone(), origin)
                });
                text
            }
            Err(why) => why,
        };
        self.mark(name, format!("script: {what}"));
    }

    pub(super) fn recover_coordinator(&mut self) {
        if !self.coordinator.needs_restore() {
            return;
        }
        let done = if self.coordinator.up {
            "rebuilt"
        } else {
            "recovered"
        };
        let result = self.coordinator.restore(self.now).and_then(|r| match r {
            Recovery::Recovered { .. } => {
                let engine = &self.coordinator.engine;
                let known = |job| engine.describe_job(job).is_ok();
                self.checker
                    .acknowledged_survived(self.now, known)
                    .map(|()| r)
            }
            refused => Ok(refused),
        });
        let what = match &result {
            Ok(Recovery::Recovered { torn_bytes: 0, .. }) => {
                format!("{done}: replayed state equals the last synced state")
            }
            Ok(Recovery::Recovered { torn_bytes, .. }) => format!(
                "{done}: replayed state equals the last synced state; dropped a torn batch of {torn_bytes} bytes"
            ),
            Ok(Recovery::Refused(c)) => format!("recovery refused: {c}"),
            Err(f) => format!("recovery failed: {}", f.detail),
        };
        let what = match self.coordinator.paused_until() {
            Some(until) => format!("{what}; inputs refused until {until}"),
            None => what,
        };
        self.mark("coordinator", what.clone());
        self.tick_at = None;
        match result {
            Ok(Recovery::Refused(_)) => {
                self.stopped = Some(what);
                self.done = true;
            }
            Ok(Recovery::Recovered { .. }) => self.after_coordinator(Ok(Vec::new())),
            Err(f) => self.after_coordinator(Err(f)),
        }
    }

    /// The liveness phase begins: every fault heals and every process comes back.
    pub(super) fn heal(&mut self) {
        self.mark("all", "heal".into());
        self.healed = true;
        self.network.heal();
        if let Some(append) = self.coordinator.heal_storage() {
            self.queue.push(self.now, Event::AppendDone(append));
        }
        self.recover_coordinator();
        for idx in 0..self.fleet.len() {
            match self.fleet.life(idx) {
                Life::Paused => self.wake(idx),
                Life::Down => self.boot(idx),
                Life::Up | Life::NotStarted => {}
            }
        }
        self.check_done();
    }
}
