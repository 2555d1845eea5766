//! A simulated client: submits each job at its time and resends until answered (a
//! resubmission under the same name is answered with the existing job), and cancels
//! jobs on request once it knows their ids. It adds and deletes schedules the same way
//! (adding the same spec again is a duplicate; deleting again is `unknown_schedule`).
//! It watches its jobs for suspended tasks and signals each suspension it hears of,
//! resending until answered (a resent signal is answered as a duplicate).

use keel_engine::{
    Accepted, ClientCommand, JobId, JobSpec, Payload, Rejection, ScheduleCommand, ScheduleSpec,
    TaskId,
};
use std::collections::BTreeMap;

/// A command to send: request id, command, resend after this many ms if unanswered.
pub(crate) type Send = (u64, ClientCommand, u64);

const RESEND_MS: u64 = 2_000;

/// What an unanswered request is about.
#[derive(Clone, Copy)]
enum About {
    Job(usize),
    Schedule(usize),
    /// A signal, which needs nothing more once answered.
    Signal,
}

pub(crate) struct Client {
    specs: Vec<JobSpec>,
    ids: Vec<Option<JobId>>,
    cancel_wanted: Vec<bool>,
    schedules: Vec<ScheduleSpec>,
    /// Per schedule: its `Add` was answered; its deletion is wanted once it is.
    added: Vec<bool>,
    delete_wanted: Vec<bool>,
    /// Schedules whose deletion was answered.
    deleted: usize,
    pending: BTreeMap<u64, (About, ClientCommand)>,
    next_req: u64,
    /// Suspensions signalled so far.
    signals_sent: u64,
}

impl Client {
    pub(crate) fn new(specs: Vec<JobSpec>, schedules: Vec<ScheduleSpec>) -> Client {
        let n = specs.len();
        Client {
            specs,
            ids: vec![None; n],
            cancel_wanted: vec![false; n],
            added: vec![false; schedules.len()],
            delete_wanted: vec![false; schedules.len()],
            schedules,
            deleted: 0,
            pending: BTreeMap::new(),
            next_req: 0,
            signals_sent: 0,
        }
    }

    /// Whether every schedule's deletion has been answered.
    pub(crate) fn schedules_deleted(&self) -> bool {
        self.deleted == self.schedules.len()
    }

    /// Adds (`add`) or deletes schedule `i`.
    pub(crate) fn schedule(&mut self, i: usize, add: bool) -> Vec<Send> {
        if add {
            self.add_schedule(i)
        } else {
            self.delete_schedule(i)
        }
    }

    fn add_schedule(&mut self, i: usize) -> Vec<Send> {
        let spec = self.schedules[i].clone();
        let add = ClientCommand::Schedule(ScheduleCommand::Add(Box::new(spec)));
        self.send_about(About::Schedule(i), add)
    }

    /// Deletes schedule `i` once its `Add` was answered, so a delayed `Add` cannot
    /// land after the deletion.
    fn delete_schedule(&mut self, i: usize) -> Vec<Send> {
        if !self.added[i] {
            self.delete_wanted[i] = true;
            return Vec::new();
        }
        let name = self.schedules[i].name.clone();
        let delete = ClientCommand::Schedule(ScheduleCommand::Delete { name });
        self.send_about(About::Schedule(i), delete)
    }

    pub(crate) fn jobs_total(&self) -> usize {
        self.specs.len()
    }

    fn send(&mut self, job: usize, cmd: ClientCommand) -> Vec<Send> {
        self.send_about(About::Job(job), cmd)
    }

    fn send_about(&mut self, about: About, cmd: ClientCommand) -> Vec<Send> {
        self.next_req += 1;
        self.pending.insert(self.next_req, (about, cmd.clone()));
        vec![(self.next_req, cmd, RESEND_MS)]
    }

    pub(crate) fn submit(&mut self, job: usize) -> Vec<Send> {
        let spec = self.specs[job].clone();
        self.send(job, ClientCommand::SubmitJob(spec))
    }

    pub(crate) fn cancel(&mut self, name: &str) -> Vec<Send> {
        let Some(j) = self.specs.iter().position(|s| s.name == name) else {
            return Vec::new();
        };
        match self.ids[j] {
            Some(job) => self.send(j, ClientCommand::CancelJob { job }),
            None => {
                self.cancel_wanted[j] = true;
                Vec::new()
            }
        }
    }

    /// `task` was seen suspended at `waitpoint`: signal it. The key names the
    /// suspension's sighting, so a resend is a duplicate and a later suspension of the
    /// same task (its earlier one lost in a crash) gets a signal of its own.
    pub(crate) fn signal(&mut self, task: TaskId, waitpoint: &str) -> Vec<Send> {
        self.signals_sent += 1;
        let signal = ClientCommand::Signal {
            task,
            waitpoint: waitpoint.to_string(),
            idempotency_key: format!("seen-{}", self.signals_sent),
            payload: Payload::from(crate::work::signal_for(task)),
        };
        self.send_about(About::Signal, signal)
    }

    pub(crate) fn resend(&mut self, req: u64) -> Vec<Send> {
        match self.pending.get(&req) {
            Some((_, cmd)) => vec![(req, cmd.clone(), RESEND_MS)],
            None => Vec::new(),
        }
    }

    pub(crate) fn on_reply(&mut self, req: u64, reply: &Result<Accepted, Rejection>) -> Vec<Send> {
        let Some((j, cmd)) = self.pending.remove(&req) else {
            return Vec::new();
        };
        let j = match j {
            About::Job(j) => j,
            About::Signal => return Vec::new(),
            // A resent delete whose first copy landed is answered `unknown_schedule`.
            About::Schedule(_)
                if matches!(cmd, ClientCommand::Schedule(ScheduleCommand::Delete { .. })) =>
            {
                self.deleted += 1;
                return Vec::new();
            }
            About::Schedule(i) => {
                self.added[i] = true;
                if self.delete_wanted[i] {
                    return self.delete_schedule(i);
                }
                return Vec::new();
            }
        };
        if let Ok(Accepted::JobSubmitted { job, .. }) = reply {
            self.ids[j] = Some(*job);
            if std::mem::take(&mut self.cancel_wanted[j]) {
                return self.send(j, ClientCommand::CancelJob { job: *job });
            }
        }
        Vec::new()
    }
}
