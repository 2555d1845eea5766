//! History checks: what must hold across the coordinator's released outputs and the
//! workers' beliefs, which the engine cannot see from inside. The checker follows the
//! replies and effects in the order the coordinator released them, keeps the shadow of
//! who holds each task, counts what the scenario's expectations count, draws the
//! timeline's bars, and flags the first thing that breaks a safety property.

use crate::beliefs::Beliefs;
use crate::budget_checks::BudgetChecks;
use crate::check::{Check, CheckFailure};
use crate::clock::DriftClock;
use crate::data_checks::DataChecker;
use crate::event_ids::{effect_ids, Ids};
use crate::outcomes::Outcomes;
use crate::rate_checks::RateChecks;
use crate::read_checks::ReadChecks;
use crate::result_checks::ResultChecks;
use crate::scenario::CountExpect;
use crate::schedule_checks::ScheduleChecks;
use crate::shadow::{EndedLease, Shadow};
use crate::stats::{Stats, Subject};
use crate::timeline::Bar;
use keel_engine::{
    Accepted, ClientCommand, Effect, Fence, Input, JobId, Recipient, Rejection, ScheduleCommand,
    TaskId, Time,
};
use std::collections::BTreeMap;

#[path = "checks_workers.rs"]
mod checks_workers;

/// At most this many failures are kept; the first is what a run reports.
const KEPT: usize = 16;

pub(crate) struct Checker {
    pub shadow: Shadow,
    pub outcomes: Outcomes,
    pub stats: Stats,
    beliefs: Beliefs,
    pub bars: Vec<Bar>,
    pub failures: Vec<CheckFailure>,
    data: DataChecker,
    /// What readers of outputs must see; read against the engine by the world.
    pub results: ResultChecks,
    /// What clients' status reads have seen.
    pub reads: ReadChecks,
    /// How many grants each rate-limited bucket let through.
    pub rates: RateChecks,
    /// The schedules clients added and the runs they fired.
    pub schedules: ScheduleChecks,
    /// Each budget's own count of attempts and reported usage.
    pub budgets: BudgetChecks,
    /// What consumers read through their streaming edges.
    pub edges: crate::edge_checks::EdgeChecks,
}

impl Checker {
    /// `trust_ms`: the local spans a lease belief can be measured over.
    pub(crate) fn new(
        trust_ms: &[u64],
        tenant_caps: BTreeMap<String, u32>,
        counts: &[CountExpect],
    ) -> Checker {
        Checker {
            shadow: Shadow::new(tenant_caps),
            outcomes: Outcomes::default(),
            stats: Stats::new(counts),
            beliefs: Beliefs::new(trust_ms),
            bars: Vec::new(),
            failures: Vec::new(),
            data: DataChecker::default(),
            results: ResultChecks::default(),
            reads: ReadChecks::default(),
            rates: RateChecks::default(),
            schedules: ScheduleChecks::default(),
            budgets: BudgetChecks::default(),
            edges: Default::default(),
        }
    }

    pub(crate) fn flag(&mut self, failure: CheckFailure) {
        if self.stats.wants("check", failure.check.name()) {
            self.stats.count(
                failure.at,
                "check",
                failure.check.name(),
                &Subject::default(),
            );
        }
        if self.failures.len() < KEPT {
            self.failures.push(failure);
        }
    }

    pub(crate) fn fail(&mut self, at: Time, check: Check, detail: String) {
        self.flag(CheckFailure { at, check, detail });
    }

    /// A worker started, extended or dropped its belief in a lease.
    pub(crate) fn belief(
        &mut self,
        now: Time,
        worker: usize,
        task: TaskId,
        held: Option<(Fence, Time)>,
        clocks: &[DriftClock],
    ) {
        if let Some(detail) = self.beliefs.update(now, worker, task, held, clocks) {
            self.fail(now, Check::DoubleLease, detail);
        }
    }

    /// Counts `kind:name` for whatever the expectations filter on.
    fn count(&mut self, at: Time, kind: &str, name: &str, ids: Ids) {
        if !self.stats.wants(kind, name) {
            return;
        }
        let task = ids.task.and_then(|t| self.shadow.task_names(t));
        let job = match (task, ids.job) {
            (Some((job, _)), _) => Some(job),
            (None, Some(job)) => self.shadow.job_name(job),
            (None, None) => None,
        };
        let subject = Subject {
            worker: ids.worker,
            job,
            task: task.map(|(_, key)| key),
            attempt: ids.attempt,
        };
        self.stats.count(at, kind, name, &subject);
    }

    /// One input as applied by the coordinator, with the outputs it released.
    /// `durable`: the log position up to which inputs are durable.
    pub(crate) fn released(
        &mut self,
        now: Time,
        input: &Input,
        reply: Option<&Result<Accepted, Rejection>>,
        effects: &[Effect],
        (position, durable): (u64, u64),
    ) {
        if position > durable {
            let detail = format!("outputs of input {position} left before it was durable (inputs up to {durable} were)");
            self.fail(now, Check::UndurableRelease, detail);
        }
        match (input, reply) {
            (Input::Client(ClientCommand::SubmitJob(spec)), Some(reply)) => {
                self.submitted(now, spec, reply)
            }
            (Input::Client(ClientCommand::Schedule(ScheduleCommand::Add(spec))), Some(Ok(_))) => {
                self.schedules.added(spec)
            }
            (
                Input::Worker {
                    worker, command, ..
                },
                Some(reply),
            ) => self.worker_reply(now, worker, command, reply),
            _ => {}
        }
        let by_signal = matches!(
            (input, reply),
            (
                Input::Client(ClientCommand::Signal { .. }),
                Some(Ok(Accepted::Signalled { resumed: true, .. }))
            )
        );
        for e in effects {
            if let Effect::TaskResumed { task, .. } = e {
                self.data.resumed(*task, by_signal);
            }
            self.effect(now, e);
        }
        for detail in self.budgets.released(now, input, reply, effects) {
            self.fail(now, Check::Budget, detail);
        }
    }

    fn submitted(
        &mut self,
        now: Time,
        spec: &keel_engine::JobSpec,
        reply: &Result<Accepted, Rejection>,
    ) {
        match reply {
            Ok(Accepted::JobSubmitted {
                job,
                first_task,
                duplicate: false,
                ..
            }) => self.admit(*job, *first_task, spec),
            Err(r) => {
                let job = self.shadow.jobs().find(|(_, n)| *n == spec.name);
                let ids = Ids {
                    job: job.map(|(id, _)| id),
                    ..Ids::default()
                };
                self.count(now, "reject", r.code(), ids);
                self.outcomes.rejected(&spec.name);
            }
            Ok(_) => {}
        }
    }

    /// A job the engine admitted, submitted by a client or fired by a schedule.
    fn admit(&mut self, job: JobId, first_task: TaskId, spec: &keel_engine::JobSpec) {
        self.shadow.add_job(job, first_task, spec);
        self.data.submitted(first_task, spec);
        self.results.admitted(job, first_task, spec);
        self.rates.admitted(first_task, spec);
        self.budgets.admitted(job, first_task, spec);
        self.edges.admitted(first_task, spec);
    }

    /// A schedule's run was submitted: admit it like a client's job, once per due time.
    fn fired(&mut self, now: Time, schedule: &str, due: Time, (job, first): (JobId, TaskId)) {
        match self.schedules.fired(schedule, due, job) {
            Ok(spec) => self.admit(job, first, &spec),
            Err(detail) => self.fail(now, Check::ScheduleFire, detail),
        }
    }

    /// A lease ended: its attempt becomes a bar on the timeline.
    fn bar(&mut self, now: Time, ended: Option<EndedLease>, outcome: &'static str) {
        if let Some(lease) = ended {
            self.bars.push(Bar {
                worker: lease.worker.to_string(),
                task: lease.fence.task,
                attempt: lease.fence.attempt,
                start: lease.since,
                end: now,
                outcome,
            });
        }
    }

    fn effect(&mut self, now: Time, e: &Effect) {
        self.count_effect(now, e);
        match e {
            Effect::GrantOffered { .. } => self.offered(now, e),
            Effect::GrantWithdrawn { grant, .. } => self.shadow.release_grant(*grant),
            Effect::LeaseRevoked { fence, reason, .. } => {
                let ended = self.shadow.end_lease(*fence);
                self.bar(now, ended, reason.label());
            }
            Effect::TaskRequeued { task, reason, .. } => {
                let ended = self.shadow.clear_task(*task);
                self.bar(now, ended, reason.label());
            }
            Effect::TaskFinished { task, outcome, .. } => {
                if !self.shadow.finish(*task) {
                    let detail = format!("task {task} finished twice ({outcome:?})");
                    self.fail(now, Check::DoubleFinish, detail);
                }
                let ended = self.shadow.clear_task(*task);
                self.bar(now, ended, "finished");
            }
            Effect::ScheduleFired {
                schedule,
                due,
                job,
                first_task,
            } => self.fired(now, schedule, *due, (*job, *first_task)),
            Effect::JobFinished { job, outcome } => {
                self.results.finished(*job);
                self.schedules.finished(*job);
                let done = match self.shadow.job_name(*job) {
                    Some(name) => self.outcomes.finished(name, outcome.label()),
                    None => true,
                };
                if !done {
                    let detail = format!("job {job} finished twice");
                    self.fail(now, Check::DoubleFinish, detail);
                }
            }
            Effect::WorkerLost { worker, .. } => {
                for ended in self.shadow.clear_worker(worker) {
                    self.bar(now, Some(ended), "worker_lost");
                }
            }
            Effect::WorkerBlacklisted { worker, .. } => self.shadow.blacklist(worker, true),
            Effect::WorkerReadmitted { worker } => self.shadow.blacklist(worker, false),
            _ => {}
        }
    }

    /// A grant was offered: to a worker that may hold it, within the rates, carrying
    /// the committed inputs and the signal that resumed the task.
    fn offered(&mut self, now: Time, e: &Effect) {
        let Effect::GrantOffered {
            worker,
            grant,
            job,
            task,
            attempt,
            inputs,
            signal,
            expires_at,
            ..
        } = e
        else {
            return;
        };
        for (check, detail) in self.shadow.offer(worker, *grant, *job, *task, *attempt) {
            self.fail(now, check, detail);
        }
        if let Some(detail) = self.rates.granted(*task, *expires_at) {
            self.fail(now, Check::RateLimit, detail);
        }
        if let Some(detail) = self.data.offered(*task, inputs) {
            self.fail(now, Check::InputMismatch, detail);
        }
        let signal = signal.as_ref().map(|p| p.as_bytes());
        if let Some(detail) = self.data.offered_signal(*task, signal) {
            self.fail(now, Check::InputMismatch, detail);
        }
    }

    fn count_effect(&mut self, now: Time, e: &Effect) {
        let recipient = e.recipient();
        let worker = match &recipient {
            Recipient::Worker(w) => Some(w),
            Recipient::Job(_) | Recipient::Operator => None,
        };
        let ids = effect_ids(worker, e);
        self.count(now, "effect", e.label(), ids);
        match e {
            Effect::LeaseRevoked { reason, .. } => self.count(now, "revoke", reason.label(), ids),
            Effect::TaskRequeued { reason, .. } => self.count(now, "requeue", reason.label(), ids),
            Effect::GrantWithdrawn { reason, .. } => {
                self.count(now, "withdraw", reason.label(), ids)
            }
            _ => {}
        }
    }

    /// After the liveness bound: every job must have ended.
    pub(crate) fn liveness(&mut self, now: Time, expected_jobs: &[String]) {
        let mut stuck: Vec<String> = expected_jobs
            .iter()
            .filter(|j| self.outcomes.get(j).is_none())
            .map(|j| format!("{j} ({})", self.shadow.job_progress(j)))
            .collect();
        if self.schedules.open_runs() > 0 {
            stuck.push(format!("{} schedule runs", self.schedules.open_runs()));
        }
        stuck.extend(self.budgets.stopped_unended());
        if !stuck.is_empty() {
            let detail = format!("jobs not terminal after healing: {}", stuck.join(", "));
            self.fail(now, Check::Liveness, detail);
        }
    }

    /// Everything whose reply went out was durable: a recovered coordinator still knows
    /// (`known`) every job whose admission was acknowledged and which has not ended.
    pub(crate) fn acknowledged_survived(
        &self,
        now: Time,
        known: impl Fn(JobId) -> bool,
    ) -> Result<(), CheckFailure> {
        let mut open = self
            .shadow
            .jobs()
            .filter(|(_, name)| self.outcomes.get(name).is_none());
        match open.find(|(job, _)| !known(*job)) {
            Some((job, name)) => Err(CheckFailure {
                at: now,
                check: Check::LostAcknowledgedInput,
                detail: format!(
                    "job {name} ({job}) was acknowledged but is unknown after recovery"
                ),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "checks_effects_tests.rs"]
mod effects_tests;
