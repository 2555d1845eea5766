//! A simulated client: submits each job at its time and resends until answered (a
//! resubmission under the same name is answered with the existing job), and cancels
//! jobs on request once it knows their ids.

use keel_engine::{Accepted, ClientCommand, JobId, JobSpec, Rejection};
use std::collections::BTreeMap;

/// A command to send: request id, command, resend after this many ms if unanswered.
pub(crate) type Send = (u64, ClientCommand, u64);

const RESEND_MS: u64 = 2_000;

pub(crate) struct Client {
    specs: Vec<JobSpec>,
    ids: Vec<Option<JobId>>,
    cancel_wanted: Vec<bool>,
    pending: BTreeMap<u64, (usize, ClientCommand)>,
    next_req: u64,
}

impl Client {
    pub(crate) fn new(specs: Vec<JobSpec>) -> Client {
        let n = specs.len();
        Client {
            specs,
            ids: vec![None; n],
            cancel_wanted: vec![false; n],
            pending: BTreeMap::new(),
            next_req: 0,
        }
    }

    pub(crate) fn jobs_total(&self) -> usize {
        self.specs.len()
    }

    fn send(&mut self, job: usize, cmd: ClientCommand) -> Vec<Send> {
        self.next_req += 1;
        self.pending.insert(self.next_req, (job, cmd.clone()));
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

    pub(crate) fn resend(&mut self, req: u64) -> Vec<Send> {
        match self.pending.get(&req) {
            Some((_, cmd)) => vec![(req, cmd.clone(), RESEND_MS)],
            None => Vec::new(),
        }
    }

    pub(crate) fn on_reply(&mut self, req: u64, reply: &Result<Accepted, Rejection>) -> Vec<Send> {
        let Some((j, _)) = self.pending.remove(&req) else {
            return Vec::new();
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
