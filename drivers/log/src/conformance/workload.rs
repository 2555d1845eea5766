//! A small, deterministic coordinator workload: workers register, jobs arrive, grants
//! are accepted and leases completed, time passes. It produces realistic engine inputs
//! for recovery tests and benchmarks.

use crate::Entry;
use keel_engine::{
    Accepted, ClientCommand, Effect, Input, InstanceId, JobSpec, Outputs, Payload, TaskSpec, Time,
    WorkerCommand, WorkerId,
};
use std::collections::VecDeque;

/// A seeded stream of plausible inputs (registrations, jobs, grants, completions) for
/// filling a log with entries a real engine accepts.
pub struct Workload {
    state: u64,
    now: Time,
    jobs: u64,
    workers: Vec<WorkerId>,
    pending: VecDeque<Input>,
}

impl Workload {
    /// A workload with four workers registered first; `seed` picks the rest.
    pub fn new(seed: u64) -> Workload {
        let workers: Vec<WorkerId> = (0..4).map(|i| WorkerId::new(format!("w{i}"))).collect();
        let mut pending = VecDeque::new();
        for w in &workers {
            let register = WorkerCommand::Register {
                capabilities: vec![],
                lanes: vec![],
                max_concurrency: 8,
            };
            pending.push_back(Input::worker(w, InstanceId::new(1), register));
            pending.push_back(Input::worker(
                w,
                InstanceId::new(1),
                WorkerCommand::RequestWork { credits: 8 },
            ));
        }
        Workload {
            state: seed | 1,
            now: 0,
            jobs: 0,
            workers,
            pending,
        }
    }

    fn random(&mut self, below: u64) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state % below
    }

    /// The next input, and the time to apply it at.
    pub fn next_entry(&mut self) -> Entry {
        self.now += 1 + self.random(20);
        let input = match self.pending.pop_front() {
            Some(input) => input,
            None => match self.random(4) {
                0 => {
                    self.jobs += 1;
                    let tasks = (0..1 + self.random(3))
                        .map(|t| TaskSpec::new(format!("t{t}")))
                        .collect();
                    Input::Client(ClientCommand::SubmitJob(JobSpec::new(
                        format!("job-{}", self.jobs),
                        tasks,
                    )))
                }
                1 => Input::Tick,
                _ => {
                    let w = self.random(self.workers.len() as u64) as usize;
                    Input::worker(
                        &self.workers[w],
                        InstanceId::new(1),
                        WorkerCommand::Heartbeat,
                    )
                }
            },
        };
        Entry::new(self.now, input)
    }

    /// Reacts to what the engine answered, as honest workers would.
    pub fn observe(&mut self, input: &Input, outputs: &Outputs) {
        for effect in &outputs.effects {
            if let Effect::GrantOffered { worker, grant, .. } = effect {
                let accept = WorkerCommand::AcceptGrant { grant: *grant };
                self.pending
                    .push_back(Input::worker(worker, InstanceId::new(1), accept));
            }
        }
        if let (Some(Ok(Accepted::LeaseStarted { fence, .. })), Input::Worker { worker, .. }) =
            (&outputs.reply, input)
        {
            let complete = WorkerCommand::Complete {
                fence: *fence,
                output: Payload::default(),
            };
            self.pending
                .push_back(Input::worker(worker, InstanceId::new(1), complete));
            self.pending.push_back(Input::worker(
                worker,
                InstanceId::new(1),
                WorkerCommand::RequestWork { credits: 8 },
            ));
        }
    }
}
