//! One simulated run: the event loop. It pops events in (virtual time, sequence) order
//! and hands each to the part that owns it: the coordinator, a worker process, the
//! client, the fault model or the script. It routes what they produce through the
//! network and feeds every released output to the checker and the trace. Everything
//! happens on one thread, drawn from one seeded RNG.

use crate::budget_checks::BudgetChecks;
use crate::check::{Check, CheckFailure};
use crate::check_pace::CheckPace;
use crate::checks::Checker;
use crate::client::Client;
use crate::coordinator::{Commit, Coordinator, Origin, Record};
use crate::events::EventQueue;
use crate::fleet::{Fleet, Life, WorkerEvent};
use crate::network::{Fate, Link, Network};
use crate::options::RunOptions;
use crate::rate_checks::RateChecks;
use crate::rng::{SimRng, Stream};
use crate::scenario::Scenario;
use crate::setup;
use crate::trace::Trace;
use crate::worker::WorkerOutput;
use keel_engine::{Accepted, ClientCommand, Effect, Input, Recipient, Rejection, Time};

/// How long a released suspension takes to reach the client's watch.
const WATCH_DELAY_MS: Time = 5;

#[path = "world_faults.rs"]
mod world_faults;
#[path = "world_workers.rs"]
mod world_workers;

pub(crate) enum Event {
    ToCoordinator(Input, Origin),
    /// Inputs a worker sent in one frame.
    FrameToCoordinator(Vec<(Origin, Input)>),
    ToWorker(usize, WorkerEvent),
    ToClient(u64, Result<Accepted, Rejection>),
    CoordinatorTick,
    /// Append number `.0` completed.
    AppendDone(u64),
    /// The coordinator, stopped by a storage fault, starts again (or rebuilds its
    /// engine from the log after a failed append).
    CoordinatorRestart,
    FaultStart(usize),
    FaultEnd(usize),
    Script(usize),
    Submit(usize),
    /// The client adds (`true`) or deletes schedule `.0`.
    Schedule(usize, bool),
    ClientResend(u64),
    /// The client's watch shows this task suspended at this waitpoint.
    Suspended(keel_engine::TaskId, String),
    /// The client's `.0`-th status read is due.
    Read(u64),
    /// A status read of this job reaches the coordinator.
    ReadArrives(String),
    Join(usize),
    Heal,
    Deadline,
}

pub(crate) struct World<'a> {
    pub scenario: &'a Scenario,
    opts: RunOptions,
    pub now: Time,
    queue: EventQueue<Event>,
    rng: SimRng,
    network: Network,
    coordinator: Coordinator,
    /// When the coordinator's next tick is queued, if it is.
    tick_at: Option<Time>,
    /// How long a coordinator stopped by an armed storage fault stays down.
    storage_downtime_ms: u64,
    pub checker: Checker,
    pub trace: Trace,
    client: Client,
    fleet: Fleet,
    healed: bool,
    pub events: u64,
    done: bool,
    /// Moments the engine held exactly the released inputs, for sampling the budget
    /// comparison.
    settled_moments: u64,
    /// Why the run ended before its liveness phase, when it did.
    pub stopped: Option<String>,
    /// Faults as they happened: (time, worker name or "coordinator", what).
    pub marks: Vec<(Time, String, String)>,
    /// A buffer for what a worker asks for, reused across events.
    outputs: Vec<WorkerOutput>,
}

impl<'a> World<'a> {
    pub(crate) fn new(scenario: &'a Scenario, opts: RunOptions) -> World<'a> {
        let config = setup::engine_config(scenario, opts.seed);
        let durable = opts.durable || scenario.faults.iter().any(|f| f.kind.needs_durability());
        let fleet = Fleet::new(
            scenario
                .workers
                .iter()
                .enumerate()
                .map(|(i, w)| (setup::worker_params(w, i, &config), w.drift_ppm)),
        );
        // A belief ends at a lease deadline or a session deadline, measured over the
        // lease TTL or the liveness timeout: drift over either bounds how far it can
        // outlive the coordinator's view.
        let mut checker = Checker::new(
            &[config.lease_ttl_ms, config.liveness_timeout_ms],
            config.tenants.caps.clone(),
            &scenario.expect.counts,
        );
        checker.rates = RateChecks::new(config.rates.clone(), config.grant_ttl_ms);
        checker.budgets = BudgetChecks::new(config.budgets.clone());
        let mut world = World {
            scenario,
            opts,
            now: 0,
            queue: EventQueue::default(),
            rng: SimRng::new(opts.seed, Stream::Run),
            network: Network::new(scenario.network.clone(), scenario.workers.len()),
            checker,
            coordinator: Coordinator::new(
                config,
                durable,
                opts.hook,
                CheckPace::new(opts.check_every, opts.check_budget),
                scenario.network.sync_interval_ms,
            ),
            tick_at: None,
            storage_downtime_ms: 0,
            trace: Trace::new(opts.record),
            client: Client::new(
                scenario.jobs.iter().map(setup::job_spec).collect(),
                scenario
                    .schedules
                    .iter()
                    .filter_map(|s| crate::setup::schedule_spec(s).ok())
                    .collect(),
            ),
            fleet,
            healed: false,
            events: 0,
            done: false,
            settled_moments: 0,
            stopped: None,
            marks: Vec::new(),
            outputs: Vec::new(),
        };
        if opts.reads_without_barrier {
            world.coordinator.break_read_barrier();
        }
        world.schedule();
        world
    }

    /// Queues the scenario's own events: joins, submissions, faults, healing, the
    /// liveness deadline, script steps.
    fn schedule(&mut self) {
        let scenario = self.scenario;
        for (i, w) in scenario.workers.iter().enumerate() {
            self.queue.push(w.join_ms, Event::Join(i));
        }
        for (i, j) in scenario.jobs.iter().enumerate() {
            self.queue.push(j.submit_ms, Event::Submit(i));
        }
        for (i, s) in scenario.schedules.iter().enumerate() {
            self.queue.push(s.add_ms, Event::Schedule(i, true));
            self.queue.push(s.delete_ms, Event::Schedule(i, false));
        }
        for (i, f) in scenario.faults.iter().enumerate() {
            self.queue.push(f.at_ms, Event::FaultStart(i));
        }
        let heal = scenario.heal_at_ms;
        self.queue.push(heal, Event::Heal);
        let deadline = heal.saturating_add(scenario.liveness_ms);
        self.queue.push(deadline, Event::Deadline);
        for (i, step) in scenario.script.iter().enumerate() {
            self.queue.push(step.at_ms, Event::Script(i));
        }
        if scenario.reads_every_ms > 0 && !scenario.jobs.is_empty() {
            self.queue.push(scenario.reads_every_ms, Event::Read(0));
        }
    }

    /// The client reads the status of the jobs in turn, every `reads_every_ms`, as long
    /// as the run lasts; each read crosses the client's link like any request.
    fn read(&mut self, k: u64) {
        let jobs = &self.scenario.jobs;
        let job = jobs[(k % jobs.len() as u64) as usize].name.clone();
        self.send(Link::Client, || Event::ReadArrives(job.clone()));
        let next = self.now.saturating_add(self.scenario.reads_every_ms);
        self.queue.push(next, Event::Read(k + 1));
    }

    fn failed(&self) -> bool {
        !self.checker.failures.is_empty()
    }

    /// Runs until every job has ended, the liveness bound passes, or a check fails.
    pub(crate) fn run(&mut self) {
        self.event_loop();
        if !self.failed() && self.coordinator.up {
            if let Err(f) = self.coordinator.check(self.now) {
                self.checker.flag(f);
            }
        }
        if !self.failed() && self.coordinator.up {
            let engine = &self.coordinator.engine;
            if let Err(f) = self.checker.results.read_all(self.now, engine) {
                self.checker.flag(f);
            }
        }
        if !self.failed() && self.checker.budgets.active() && self.coordinator.settled() {
            self.compare_budgets_now();
        }
    }

    fn event_loop(&mut self) {
        while let Some((at, event)) = self.queue.pop() {
            self.now = at;
            self.events += 1;
            self.handle(event);
            if self.done || self.failed() {
                break;
            }
            if self.events >= self.opts.max_events {
                let detail = format!("run did not settle within {} events", self.events);
                self.checker.flag(CheckFailure {
                    at,
                    check: Check::Liveness,
                    detail,
                });
                break;
            }
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::ToCoordinator(input, origin) => {
                let r = self
                    .coordinator
                    .deliver(self.now, input, origin, &mut self.rng);
                self.after_coordinator(r);
            }
            Event::FrameToCoordinator(sent) => {
                let r = self
                    .coordinator
                    .deliver_frame(self.now, sent, &mut self.rng);
                self.after_coordinator(r);
            }
            Event::CoordinatorTick => {
                if self.tick_at == Some(self.now) {
                    self.tick_at = None;
                    let r = self.coordinator.tick(self.now, &mut self.rng);
                    self.after_coordinator(r);
                }
            }
            Event::AppendDone(append) => {
                let r = self
                    .coordinator
                    .complete_append(self.now, append, &mut self.rng);
                self.after_coordinator(r);
            }
            Event::CoordinatorRestart => self.recover_coordinator(),
            Event::ToWorker(idx, event) => self.at_worker(idx, event),
            Event::ToClient(req, reply) => {
                let sends = self.client.on_reply(req, &reply);
                self.client_send(sends);
            }
            Event::Submit(j) => {
                let sends = self.client.submit(j);
                self.client_send(sends);
            }
            Event::Schedule(i, add) => {
                let sends = self.client.schedule(i, add);
                self.client_send(sends);
            }
            Event::Read(k) => self.read(k),
            Event::ReadArrives(job) => {
                let r = self.coordinator.read(self.now, job, &mut self.rng);
                self.after_coordinator(r);
            }
            Event::ClientResend(req) => {
                let sends = self.client.resend(req);
                self.client_send(sends);
            }
            Event::Suspended(task, waitpoint) => {
                let sends = self.client.signal(task, &waitpoint);
                self.client_send(sends);
            }
            Event::Join(idx) => {
                if self.fleet.life(idx) == Life::NotStarted {
                    self.boot(idx);
                }
            }
            Event::FaultStart(i) => self.fault(i, true),
            Event::FaultEnd(i) => self.fault(i, false),
            Event::Script(i) => self.script(i),
            Event::Heal => self.heal(),
            Event::Deadline => self.deadline(),
        }
    }

    /// The liveness bound passed: every job must have ended.
    fn deadline(&mut self) {
        let names: Vec<String> = self.scenario.jobs.iter().map(|j| j.name.clone()).collect();
        self.checker.liveness(self.now, &names);
        self.done = true;
    }

    /// After the coordinator applied something: flag a broken check, carry out what
    /// its commit pipeline did, and queue its next tick.
    fn after_coordinator(&mut self, r: Result<Vec<Commit>, CheckFailure>) {
        let commits = match r {
            Ok(commits) => commits,
            Err(f) => return self.checker.flag(f),
        };
        for commit in commits {
            self.commit(commit);
        }
        self.compare_budgets();
        if let Some(w) = self.coordinator.next_wakeup() {
            let w = w.max(self.now);
            if self.tick_at.is_none_or(|t| w < t) {
                self.tick_at = Some(w);
                self.queue.push(w, Event::CoordinatorTick);
            }
        }
    }

    fn commit(&mut self, commit: Commit) {
        match commit {
            Commit::Released(records) => self.release(records),
            Commit::InFlight { done_at, append } => {
                self.queue.push(done_at, Event::AppendDone(append))
            }
            Commit::Read(seen) => {
                for read in &seen {
                    if let Err(f) = self.checker.reads.read(self.now, read) {
                        self.checker.flag(f);
                    }
                }
            }
            Commit::Stopped(what) => {
                self.mark("coordinator", what);
                let at = self.now.saturating_add(self.storage_downtime_ms);
                self.queue.push(at, Event::CoordinatorRestart);
            }
        }
        self.check_done();
    }

    /// Outputs become visible: checked, traced, and sent on their way.
    fn release(&mut self, records: Vec<Record>) {
        let durable = self.coordinator.durable_position();
        for rec in records {
            let who = match rec.origin {
                Origin::Worker { idx, .. } => self.scenario.workers[idx].name.as_str(),
                Origin::Client { .. } => "client",
                Origin::Timer => "timer",
            };
            let reply = rec.outputs.reply.as_ref();
            let effects = &rec.outputs.effects;
            let positions = (rec.position, durable);
            self.checker
                .released(rec.at, &rec.input, reply, effects, positions);
            self.trace.record(&rec, who);
            self.route(rec);
        }
        let engine = &self.coordinator.engine;
        if let Err(f) = self.checker.results.read_finished(self.now, engine) {
            self.checker.flag(f);
        }
        self.check_done();
    }

    /// Whenever the engine holds exactly the released inputs, its budgets' use is what
    /// the budget check counted from them. Reading every budget costs a walk of them
    /// all, so like the invariant check it runs at every `check_every`-th such moment
    /// (the first included) and at the end, not after every event of a long run.
    fn compare_budgets(&mut self) {
        if !self.checker.budgets.active() || !self.coordinator.settled() {
            return;
        }
        let every = u64::from(self.opts.check_every);
        let due = every != 0 && self.settled_moments.is_multiple_of(every);
        self.settled_moments += 1;
        if due {
            self.compare_budgets_now();
        }
    }

    fn compare_budgets_now(&mut self) {
        let engine = &self.coordinator.engine;
        if let Some(detail) = self
            .checker
            .budgets
            .compare(engine.now(), &engine.budgets())
        {
            self.checker.flag(CheckFailure {
                at: self.now,
                check: Check::Budget,
                detail,
            });
        }
    }

    /// Sends a released record's reply to its sender and its effects to their workers.
    fn route(&mut self, rec: Record) {
        if let Some(reply) = &rec.outputs.reply {
            match rec.origin {
                Origin::Worker { idx, req } => self.send(Link::Down(idx), || {
                    Event::ToWorker(idx, WorkerEvent::Reply(req, reply.clone()))
                }),
                Origin::Client { req } => {
                    self.send(Link::Client, || Event::ToClient(req, reply.clone()))
                }
                Origin::Timer => {}
            }
        }
        for e in rec.outputs.effects {
            // The client watches its jobs: a released suspension reaches it like a
            // watch stream's event, late but not lost.
            if let Effect::TaskSuspended {
                task, waitpoint, ..
            } = &e
            {
                let event = Event::Suspended(*task, waitpoint.clone());
                self.queue.push(self.now + WATCH_DELAY_MS, event);
            }
            if let Recipient::Worker(w) = e.recipient() {
                if let Some(idx) = self.fleet.index(&w) {
                    self.send(Link::Down(idx), || {
                        Event::ToWorker(idx, WorkerEvent::Effect(e.clone()))
                    });
                }
            }
        }
    }

    /// The run ends once the fault schedule has played out, every job has ended, and
    /// every schedule is deleted with its runs ended.
    fn check_done(&mut self) {
        let s = &self.checker.schedules;
        let runs_ended = s.fired_total() as usize - s.open_runs();
        let jobs_ended = self.checker.outcomes.len().saturating_sub(runs_ended);
        if self.healed
            && jobs_ended >= self.client.jobs_total()
            && s.open_runs() == 0
            && self.client.schedules_deleted()
        {
            self.done = true;
        }
    }

    fn send(&mut self, link: Link, make: impl Fn() -> Event) {
        match self.network.send(&mut self.rng, self.now, link) {
            Fate::Lost | Fate::Partitioned => {}
            Fate::Deliver(a, b) => {
                self.queue.push(a, make());
                if let Some(b) = b {
                    self.queue.push(b, make());
                }
            }
        }
    }

    fn client_send(&mut self, sends: Vec<(u64, ClientCommand, u64)>) {
        for (req, command, resend_in) in sends {
            let input = Input::Client(command);
            let origin = Origin::Client { req };
            self.send(Link::Client, || Event::ToCoordinator(input.clone(), origin));
            self.queue
                .push(self.now + resend_in, Event::ClientResend(req));
        }
    }
}
