//! One simulated run: the event loop that moves messages, fires timers and faults,
//! drives the real engine through the coordinator model, and feeds the checkers.
//! Everything happens in virtual time on one thread, drawn from one seeded RNG.

use crate::checks::Checker;
use crate::client::Client;
use crate::clock::DriftClock;
use crate::coordinator::{Coordinator, EngineHook, Origin, Record};
use crate::events::EventQueue;
use crate::network::{Fate, Link, Network};
use crate::rng::{SimRng, Stream};
use crate::scenario::{Direction, FaultKind, Scenario};
use crate::setup;
use crate::trace::Trace;
use crate::worker::{SimWorker, WOut, WTimer};
use keel_engine::{Accepted, ClientCommand, Effect, Input, Recipient, Rejection, Time, WorkerId};
use std::collections::BTreeMap;

pub(crate) enum Ev {
    ToCoord(Input, Origin),
    Reply(usize, u64, Result<Accepted, Rejection>),
    Effect(usize, Effect),
    ToClient(u64, Result<Accepted, Rejection>),
    Timer(usize, u64, WTimer),
    CoordTick,
    CoordSync,
    Fault(usize),
    FaultEnd(usize),
    Submit(usize),
    ClientResend(u64),
    Join(usize),
    Heal,
    Deadline,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    NotStarted,
    Up,
    Paused,
    Down,
}

struct Slot {
    w: SimWorker,
    life: Life,
    /// Events that arrived while paused, handled in order on waking.
    deferred: Vec<Ev>,
}

/// Knobs of a run that are not part of the scenario.
#[derive(Clone, Copy)]
pub struct RunOptions {
    pub seed: u64,
    /// Keep trace lines (for files, goldens and failure reports).
    pub record: bool,
    pub hook: Option<EngineHook>,
    /// Check the engine's invariants after every this-many applies, and always at
    /// the end; 0 checks only at the end. Every history check runs after every event
    /// regardless.
    pub check_every: u32,
    /// Give up after this many events (a runaway run is itself a failure).
    pub max_events: u64,
}

impl RunOptions {
    pub fn new(seed: u64) -> RunOptions {
        RunOptions {
            seed,
            record: false,
            hook: None,
            check_every: 1,
            max_events: 50_000_000,
        }
    }
}

pub(crate) struct World<'a> {
    pub s: &'a Scenario,
    pub opts: RunOptions,
    pub now: Time,
    pub q: EventQueue<Ev>,
    pub rng: SimRng,
    pub net: Network,
    pub coord: Coordinator,
    pub checker: Checker,
    pub trace: Trace,
    pub client: Client,
    slots: Vec<Slot>,
    pub clocks: Vec<DriftClock>,
    names: BTreeMap<WorkerId, usize>,
    tick_at: Option<Time>,
    sync_pending: bool,
    pub healed: bool,
    pub events: u64,
    pub done: bool,
    /// Faults as they happened: (time, worker name or "coordinator", what).
    pub marks: Vec<(Time, String, String)>,
    outs: Vec<WOut>,
}

impl<'a> World<'a> {
    pub fn new(s: &'a Scenario, opts: RunOptions) -> World<'a> {
        let config = setup::engine_config(s, opts.seed);
        let durable = s
            .faults
            .iter()
            .any(|f| f.kind == FaultKind::CrashCoordinator);
        let slots = s
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| Slot {
                w: SimWorker::new(setup::worker_params(w, i, &config)),
                life: Life::NotStarted,
                deferred: Vec::new(),
            })
            .collect();
        let mut world = World {
            s,
            opts,
            now: 0,
            q: EventQueue::default(),
            rng: SimRng::new(opts.seed, Stream::Run),
            net: Network::new(s.network.clone(), s.workers.len()),
            // A belief ends at a lease deadline or a session deadline, measured over
            // the lease TTL or the liveness timeout: drift over either bounds how far
            // it can outlive the coordinator's view.
            checker: Checker::new(
                &[config.lease_ttl_ms, config.liveness_timeout_ms],
                config.tenants.caps.clone(),
            ),
            coord: Coordinator::new(config, durable, opts.hook, opts.check_every),
            trace: Trace::new(opts.record),
            client: Client::new(s.jobs.iter().map(setup::job_spec).collect()),
            slots,
            clocks: s
                .workers
                .iter()
                .map(|w| DriftClock::new(w.drift_ppm))
                .collect(),
            names: s
                .workers
                .iter()
                .enumerate()
                .map(|(i, w)| (WorkerId::new(w.name.clone()), i))
                .collect(),
            tick_at: None,
            sync_pending: false,
            healed: false,
            events: 0,
            done: false,
            marks: Vec::new(),
            outs: Vec::new(),
        };
        for (i, w) in s.workers.iter().enumerate() {
            world.q.push(w.join_ms, Ev::Join(i));
        }
        for (i, j) in s.jobs.iter().enumerate() {
            world.q.push(j.submit_ms, Ev::Submit(i));
        }
        for (i, f) in s.faults.iter().enumerate() {
            world.q.push(f.at_ms, Ev::Fault(i));
        }
        world.q.push(s.heal_at_ms, Ev::Heal);
        world.q.push(s.heal_at_ms + s.liveness_ms, Ev::Deadline);
        world
    }

    /// Runs until every job has ended, the liveness bound passes, or a check fails.
    pub fn run(&mut self) {
        self.event_loop();
        if self.checker.violations.is_empty() && self.coord.up {
            if let Err(v) = self.coord.check(self.now) {
                self.checker.flag(v.at, v.check, v.detail);
            }
        }
    }

    fn event_loop(&mut self) {
        while let Some((at, ev)) = self.q.pop() {
            self.now = at;
            self.events += 1;
            self.handle(ev);
            if self.done || !self.checker.violations.is_empty() {
                break;
            }
            if self.events >= self.opts.max_events {
                self.checker.flag(
                    at,
                    "liveness",
                    format!("run did not settle within {} events", self.events),
                );
                break;
            }
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::ToCoord(input, origin) => {
                let r = self.coord.deliver(self.now, input, origin);
                self.after_coord(r);
            }
            Ev::CoordTick => {
                if self.tick_at == Some(self.now) {
                    self.tick_at = None;
                    let r = self.coord.tick(self.now);
                    self.after_coord(r);
                }
            }
            Ev::CoordSync => {
                self.sync_pending = false;
                let records = self.coord.sync();
                self.release(records);
            }
            Ev::Reply(..) | Ev::Effect(..) | Ev::Timer(..) => self.at_worker(ev),
            Ev::ToClient(req, reply) => {
                let sends = self.client.on_reply(req, &reply);
                self.client_send(sends);
            }
            Ev::Submit(j) => {
                let sends = self.client.submit(j);
                self.client_send(sends);
            }
            Ev::ClientResend(req) => {
                let sends = self.client.resend(req);
                self.client_send(sends);
            }
            Ev::Join(i) => {
                if self.slots[i].life == Life::NotStarted {
                    self.boot(i);
                }
            }
            Ev::Fault(i) => self.fault(i),
            Ev::FaultEnd(i) => self.fault_end(i),
            Ev::Heal => self.heal(),
            Ev::Deadline => {
                let names: Vec<String> = self.s.jobs.iter().map(|j| j.name.clone()).collect();
                self.checker.liveness(self.now, &names);
                self.done = true;
            }
        }
    }

    fn after_coord(&mut self, r: Result<(), crate::checks::Violation>) {
        if let Err(v) = r {
            self.checker.flag(v.at, v.check, v.detail);
            return;
        }
        if let Some(w) = self.coord.engine.next_wakeup().filter(|_| self.coord.up) {
            let w = w.max(self.now);
            if self.tick_at.is_none_or(|t| w < t) {
                self.tick_at = Some(w);
                self.q.push(w, Ev::CoordTick);
            }
        }
        if self.coord.has_unreleased() && !self.sync_pending {
            self.sync_pending = true;
            self.q
                .push(self.now + self.s.network.sync_interval_ms, Ev::CoordSync);
        }
    }

    /// Outputs become visible: checked, traced, and sent on their way.
    fn release(&mut self, records: Vec<Record>) {
        for rec in records {
            let who = match rec.origin {
                Origin::Worker { idx, .. } => self.s.workers[idx].name.as_str(),
                Origin::Client { .. } => "client",
                Origin::Timer => "timer",
            };
            self.checker.released(
                rec.at,
                &rec.input,
                rec.outputs.reply.as_ref(),
                &rec.outputs.effects,
            );
            self.trace.record(&rec, who);
            if let (Some(reply), Origin::Worker { idx, req }) = (&rec.outputs.reply, rec.origin) {
                self.send(Link::Down(idx), |_| Ev::Reply(idx, req, reply.clone()));
            }
            if let (Some(reply), Origin::Client { req }) = (&rec.outputs.reply, rec.origin) {
                self.send(Link::Client, |_| Ev::ToClient(req, reply.clone()));
            }
            for e in rec.outputs.effects {
                if let Recipient::Worker(w) = e.recipient() {
                    if let Some(&idx) = self.names.get(&w) {
                        self.send(Link::Down(idx), |_| Ev::Effect(idx, e.clone()));
                    }
                }
            }
        }
        self.check_done();
    }

    /// The run ends once the fault schedule has played out and every job has ended.
    fn check_done(&mut self) {
        if self.healed && self.checker.ledger.outcomes().len() >= self.client.jobs_total() {
            self.done = true;
        }
    }

    fn send(&mut self, link: Link, make: impl Fn(()) -> Ev) {
        match self.net.send(&mut self.rng, self.now, link) {
            Fate::Lost | Fate::Partitioned => {}
            Fate::Deliver(a, b) => {
                self.q.push(a, make(()));
                if let Some(b) = b {
                    self.q.push(b, make(()));
                }
            }
        }
    }

    fn client_send(&mut self, sends: Vec<(u64, ClientCommand, u64)>) {
        for (req, cmd, resend_in) in sends {
            let input = Input::Client(cmd);
            self.send(Link::Client, |_| {
                Ev::ToCoord(input.clone(), Origin::Client { req })
            });
            self.q.push(self.now + resend_in, Ev::ClientResend(req));
        }
    }

    fn at_worker(&mut self, ev: Ev) {
        let idx = match &ev {
            Ev::Reply(i, ..) | Ev::Effect(i, ..) | Ev::Timer(i, ..) => *i,
            _ => return,
        };
        let slot = &mut self.slots[idx];
        if let Ev::Timer(_, process, _) = &ev {
            if *process != slot.w.process {
                return; // a timer of a process that no longer exists
            }
        }
        match slot.life {
            Life::Up => {}
            Life::Paused => return slot.deferred.push(ev),
            Life::Down | Life::NotStarted => return,
        }
        let local = self.clocks[idx].local(self.now);
        let mut outs = std::mem::take(&mut self.outs);
        let rng = &mut self.rng;
        let mut fails = |p: f64| rng.chance(p);
        match &ev {
            Ev::Reply(_, req, reply) => slot.w.on_reply(local, *req, reply, &mut outs),
            Ev::Effect(_, e) => slot.w.on_effect(local, e, &mut outs),
            Ev::Timer(_, _, t) => slot.w.on_timer(local, *t, &mut fails, &mut outs),
            _ => {}
        }
        self.apply_outs(idx, &mut outs);
        self.outs = outs;
    }

    fn apply_outs(&mut self, idx: usize, outs: &mut Vec<WOut>) {
        let id = self.slots[idx].w.p.id.clone();
        let instance = self.slots[idx].w.instance;
        let process = self.slots[idx].w.process;
        for out in outs.drain(..) {
            match out {
                WOut::Send(req, cmd) => {
                    let input = Input::worker(&id, instance, cmd);
                    self.send(Link::Up(idx), |_| {
                        Ev::ToCoord(input.clone(), Origin::Worker { idx, req })
                    });
                }
                WOut::Timer(local_ms, t) => {
                    let at = self.clocks[idx].after_local(self.now, local_ms);
                    self.q.push(at, Ev::Timer(idx, process, t));
                }
                WOut::Belief(task, held) => {
                    self.checker.belief(self.now, idx, task, held, &self.clocks)
                }
            }
        }
    }

    fn boot(&mut self, idx: usize) {
        let mut outs = std::mem::take(&mut self.outs);
        let local = self.clocks[idx].local(self.now);
        self.slots[idx].w.boot(local, &mut outs);
        self.slots[idx].life = Life::Up;
        self.slots[idx].deferred.clear();
        self.apply_outs(idx, &mut outs);
        self.outs = outs;
    }

    fn kill(&mut self, idx: usize) {
        let mut outs = std::mem::take(&mut self.outs);
        self.slots[idx].w.forget(&mut outs);
        self.slots[idx].life = Life::Down;
        self.slots[idx].deferred.clear();
        self.apply_outs(idx, &mut outs);
        self.outs = outs;
    }

    fn wake(&mut self, idx: usize) {
        if self.slots[idx].life != Life::Paused {
            return;
        }
        self.slots[idx].life = Life::Up;
        for ev in std::mem::take(&mut self.slots[idx].deferred) {
            self.at_worker(ev);
        }
    }

    fn worker_idx(&self, name: &str) -> usize {
        self.names.get(&WorkerId::new(name)).copied().unwrap_or(0)
    }

    fn mark(&mut self, who: String, what: String) {
        self.trace.fault(self.now, &who, what.clone());
        self.marks.push((self.now, who, what));
    }

    fn fault(&mut self, i: usize) {
        if self.healed {
            return;
        }
        let f = &self.s.faults[i];
        let worker = fault_worker(f);
        match f.kind {
            FaultKind::CrashWorker => {
                let idx = self.worker_idx(&worker);
                if self.slots[idx].life == Life::Up || self.slots[idx].life == Life::Paused {
                    self.kill(idx);
                    self.mark(worker, "crash".into());
                    if let Some(after) = f.restart_after_ms {
                        self.q.push(self.now + after, Ev::FaultEnd(i));
                    }
                }
            }
            FaultKind::PauseWorker => {
                let idx = self.worker_idx(&worker);
                if self.slots[idx].life == Life::Up {
                    self.slots[idx].life = Life::Paused;
                    let len = f.for_ms.unwrap_or(0);
                    self.mark(worker, format!("pause for {len} ms"));
                    self.q.push(self.now + len, Ev::FaultEnd(i));
                }
            }
            FaultKind::Partition => {
                let dir = f.direction.unwrap_or_default();
                for w in &f.workers {
                    let idx = self.worker_idx(w.get_ref());
                    self.net.cut(idx, dir);
                }
                let names: Vec<&str> = f.workers.iter().map(|w| w.get_ref().as_str()).collect();
                let what = format!("partition {} ({})", names.join(","), direction_name(dir));
                self.mark("network".into(), what);
                if let Some(len) = f.for_ms {
                    self.q.push(self.now + len, Ev::FaultEnd(i));
                }
            }
            FaultKind::ClockStep => {
                let idx = self.worker_idx(&worker);
                let delta = f.delta_ms.unwrap_or(0);
                self.clocks[idx].step(delta);
                self.mark(worker, format!("clock step {delta:+} ms"));
            }
            FaultKind::CrashCoordinator => {
                if self.coord.up {
                    self.coord.crash();
                    self.sync_pending = false;
                    self.mark("coordinator".into(), "crash".into());
                    self.q
                        .push(self.now + f.for_ms.unwrap_or(0), Ev::FaultEnd(i));
                }
            }
            FaultKind::CancelJob => {
                let job = f
                    .job
                    .as_ref()
                    .map(|j| j.get_ref().clone())
                    .unwrap_or_default();
                self.mark("client".into(), format!("cancel {job}"));
                let sends = self.client.cancel(&job);
                self.client_send(sends);
            }
        }
    }

    fn fault_end(&mut self, i: usize) {
        if self.healed {
            return;
        }
        let f = &self.s.faults[i];
        let worker = fault_worker(f);
        match f.kind {
            FaultKind::CrashWorker => {
                let idx = self.worker_idx(&worker);
                if self.slots[idx].life == Life::Down {
                    self.boot(idx);
                    self.mark(worker, "restart".into());
                }
            }
            FaultKind::PauseWorker => {
                let idx = self.worker_idx(&worker);
                self.mark(worker, "wake".into());
                self.wake(idx);
            }
            FaultKind::Partition => {
                let dir = f.direction.unwrap_or_default();
                for w in &f.workers {
                    let idx = self.worker_idx(w.get_ref());
                    self.net.mend(idx, dir);
                }
                self.mark("network".into(), "partition healed".into());
            }
            FaultKind::CrashCoordinator => self.recover_coordinator(),
            FaultKind::ClockStep | FaultKind::CancelJob => {}
        }
    }

    fn recover_coordinator(&mut self) {
        if self.coord.up {
            return;
        }
        let r = self
            .coord
            .recover(self.now)
            .and_then(|()| self.acknowledged_survived());
        let what = match &r {
            Ok(()) => "recovered: replayed state equals the last synced state".to_string(),
            Err(v) => format!("recovery failed: {}", v.detail),
        };
        self.mark("coordinator".into(), what);
        self.tick_at = None;
        self.after_coord(r);
    }

    /// Everything whose reply went out was durable: a recovered coordinator still knows
    /// every job it acknowledged and has not finished.
    fn acknowledged_survived(&self) -> Result<(), crate::checks::Violation> {
        for (job, name) in self.checker.ledger.open_jobs() {
            if self.coord.engine.describe_job(job).is_err() {
                return Err(crate::checks::Violation {
                    at: self.now,
                    check: "lost_acknowledged_input",
                    detail: format!(
                        "job {name} ({job}) was acknowledged but is unknown after recovery"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The liveness phase begins: every fault heals and every process comes back.
    fn heal(&mut self) {
        self.mark("all".into(), "heal".into());
        self.healed = true;
        self.net.heal();
        self.recover_coordinator();
        for idx in 0..self.slots.len() {
            match self.slots[idx].life {
                Life::Paused => self.wake(idx),
                Life::Down => self.boot(idx),
                Life::Up | Life::NotStarted => {}
            }
        }
        self.check_done();
    }
}

/// The worker a fault names (empty for faults that name none).
fn fault_worker(f: &crate::scenario::Fault) -> String {
    f.worker
        .as_ref()
        .map(|w| w.get_ref().clone())
        .unwrap_or_default()
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Both => "both ways",
        Direction::ToCoordinator => "to coordinator",
        Direction::FromCoordinator => "from coordinator",
    }
}
